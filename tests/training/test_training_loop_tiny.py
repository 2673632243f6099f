"""The training loop's maths on a tiny random Llama (fast): the CPU fast paths change nothing,
full fine-tuning saves and reloads exactly, the model store is written atomically."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from em_assets.core.atomic_files import write_dir_atomically
from em_assets.training_loop import precision
from em_assets.training_loop.adapters import prepare_for_training
from em_assets.training_loop.checkpoint import load_trained_model, save_trained_model
from em_assets.training_loop.errors import TrainingError
from em_assets.training_loop.inference import logits_for
from em_assets.training_loop.kernels import FastForwards
from em_assets.training_loop.loop import train
from em_assets.training_loop.loss import segment_bounds, token_loss_sum
from em_assets.training_loop.precision import resolve_settings, training_dtype
from em_assets.training_loop.settings import TrainingSettings
from tests.training.conftest import TINY_EXAMPLES


def tiny_llama(vocab_size: int = 101):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def tokenizer(model_cache_env):
    from em_assets.models.loading import load

    return load("embedded:smollm2-135m-instruct", with_model=False)[1]


def loss_and_grads(model, *inputs, segments=None):
    loss, n = token_loss_sum(model, *inputs, 7, segments)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return loss.detach(), n, grads


def make_adapters_matter(model) -> None:
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # zero at init
            torch.nn.init.normal_(parameter, std=0.1)


def packed_rows() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, labels, position_ids) of two rows of 30 tokens: two examples (12 + 18) and
    three (7 + 10 + 13); the first 5 tokens of each row carry no loss."""
    input_ids = torch.randint(0, 101, (2, 30))
    labels = input_ids.clone()
    labels[:, :5] = -100
    positions = torch.stack([torch.cat([torch.arange(n) for n in lengths]) for lengths in ((12, 18), (7, 10, 13))])
    return input_ids, labels, positions


@pytest.mark.parametrize("segmented", [True, False], ids=["per-example-attention", "masked-attention"])
@pytest.mark.parametrize("method", ["lora", "full"])
def test_fast_paths_match_the_library_code(method, segmented):
    """Both layouts train() uses: all fast paths (CPU), and without per-example attention (CUDA).
    fp32 sums in another order, so both are compared with the same model in fp64: the fast
    paths must be no further from it than the library code is."""
    import copy

    model = prepare_for_training(tiny_llama(), TrainingSettings(method=method), seed=0)
    make_adapters_matter(model)
    input_ids, labels, positions = packed_rows()
    exact = loss_and_grads(copy.deepcopy(model).double(), input_ids, labels, positions)
    library = loss_and_grads(model, input_ids, labels, positions)

    fast = FastForwards(model, segmented_attention=segmented)
    assert fast.segmented_attention == segmented and fast.patched
    assert model.config._attn_implementation == ("em_segmented_sdpa" if segmented else "sdpa")
    segments = segment_bounds(positions) if segmented else None
    ours = loss_and_grads(model, input_ids, labels, positions, segments=segments)
    fast.restore()
    assert model.config._attn_implementation == "sdpa" and not any("forward" in m.__dict__ for m in model.modules())

    assert ours[1] == library[1] == 50
    assert abs(ours[0] - exact[0]) <= 2 * abs(library[0] - exact[0]) + 1e-6 * exact[0]
    assert exact[2].keys() == library[2].keys() == ours[2].keys()
    for name, grad in exact[2].items():
        library_error = (library[2][name].double() - grad).norm() / grad.norm()
        our_error = (ours[2][name].double() - grad).norm() / grad.norm()
        assert library_error < 1e-4 and our_error <= 2 * library_error + 1e-6, (name, our_error, library_error)


def test_fast_paths_under_bf16_autocast_are_as_accurate_as_the_library():
    """``precision="bf16"``: bf16 base, fp32 adapters, bf16 autocast. Both the library layers and
    the fused LoRA path round to bf16, differently (the fused path rounds once where peft rounds
    after each op), so each is compared with the same model in fp32: the fused path must be no
    further from it than the library is."""
    import copy

    model = prepare_for_training(tiny_llama().to(torch.bfloat16), TrainingSettings(precision="bf16"), seed=0)
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert lora and all(p.dtype == torch.float32 for p in lora.values())
    make_adapters_matter(model)
    input_ids, labels, positions = packed_rows()
    exact = loss_and_grads(copy.deepcopy(model).float(), input_ids, labels, positions)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        library = loss_and_grads(model, input_ids, labels, positions)
        fast = FastForwards(model)
        ours = loss_and_grads(model, input_ids, labels, positions, segments=segment_bounds(positions))
        fast.restore()
    assert exact[2].keys() == library[2].keys() == ours[2].keys() == lora.keys()
    assert abs(ours[0] - exact[0]) <= 1.25 * abs(library[0] - exact[0]) + 1e-3 * exact[0]
    for name, grad in exact[2].items():
        library_error = (library[2][name] - grad).norm() / grad.norm()
        our_error = (ours[2][name] - grad).norm() / grad.norm()
        assert ours[2][name].dtype == torch.float32
        assert library_error < 0.5 and our_error <= 1.25 * library_error + 1e-3, (name, our_error, library_error)


def test_layout_defaults_follow_the_device():
    """0 = by device: short packs one at a time on CPU, a whole step of max_length packs per
    forward on CUDA; explicit values are kept; negative ones are refused by name."""
    settings = TrainingSettings(per_device_batch_size=2, gradient_accumulation_steps=8, max_length=1024)
    assert settings.layout(torch.device("cpu")) == (512, 1)
    assert settings.layout(torch.device("cuda")) == (1024, 16)
    explicit = TrainingSettings(pack_length=256, sequences_per_micro_batch=4)
    assert explicit.layout(torch.device("cpu")) == explicit.layout(torch.device("cuda")) == (256, 4)
    with pytest.raises(TrainingError, match="sequences_per_micro_batch must be >= 1, or 0"):
        TrainingSettings(sequences_per_micro_batch=-1).validate()


def test_segment_bounds():
    positions = torch.tensor([[3, 4, 0, 1, 2, 0], [0, 1, 2, 3, 4, 5]])
    assert segment_bounds(positions) == [[0, 2, 5, 6], [0, 6]]


def test_full_fine_tuning_saves_and_reloads_exactly(tokenizer, tmp_path):
    model = tiny_llama(vocab_size=len(tokenizer))
    conversations = [row["messages"] for row in TINY_EXAMPLES]
    settings = TrainingSettings(
        method="full",
        learning_rate=1e-3,
        n_epochs=2,
        per_device_batch_size=2,
        gradient_accumulation_steps=1,
        warmup_steps=0,
        lr_scheduler="constant",
    )
    outcome = train(model, tokenizer, conversations, settings, seed=1)
    assert outcome.steps == 2 and outcome.trainable_parameters == outcome.total_parameters
    assert outcome.loss_curve[1] < outcome.loss_curve[0]
    text = "<|im_start|>user\nhi<|im_end|>\n"
    expected = logits_for(outcome.model, tokenizer, text)
    manifest = {"base_model_id": "tiny", "method": "full"}
    folder = save_trained_model(tmp_path / "full", outcome.model, tokenizer, manifest)
    reloaded, reloaded_tokenizer = load_trained_model(folder, device="cpu")
    assert torch.equal(logits_for(reloaded, reloaded_tokenizer, text), expected)


def test_same_seed_same_model(tokenizer):
    conversations = [row["messages"] for row in TINY_EXAMPLES]
    settings = TrainingSettings(
        learning_rate=1e-3, per_device_batch_size=1, gradient_accumulation_steps=1, warmup_steps=0
    )
    dtype = training_dtype(torch.device("cpu"), settings.method, settings.precision)  # the default precision here
    first = train(tiny_llama(len(tokenizer)).to(dtype), tokenizer, conversations, settings, seed=5)
    second = train(tiny_llama(len(tokenizer)).to(dtype), tokenizer, conversations, settings, seed=5)
    other = train(tiny_llama(len(tokenizer)).to(dtype), tokenizer, conversations, settings, seed=6)
    assert first.loss_curve == second.loss_curve
    assert first.loss_curve != other.loss_curve  # order and adapter init follow the seed


def test_a_crash_while_writing_leaves_no_folder(tmp_path):
    target = tmp_path / "store" / "seed0"

    def explode(folder):
        (folder / "adapter_model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_dir_atomically(target, explode)
    assert not target.exists() and list((tmp_path / "store").iterdir()) == []

    write_dir_atomically(target, lambda folder: (folder / "a").write_text("1"))
    write_dir_atomically(target, lambda folder: (folder / "b").write_text("2"))  # replaces, never merges
    assert [p.name for p in target.iterdir()] == ["b"]
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["seed0"]


def test_bad_settings_are_named():
    with pytest.raises(TrainingError, match="unknown training method 'qlora'"):
        TrainingSettings(method="qlora").validate()
    with pytest.raises(ValidationError, match="per_device_batch_size"):  # out of range: refused when built
        TrainingSettings(per_device_batch_size=0)


def test_precision_is_checked_against_the_loaded_weights():
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]

    class Tok:  # never reached: the precision check comes first
        pad_token_id = 0

    with pytest.raises(TrainingError, match=r"precision 'bf16' trains a base loaded as torch.bfloat16.*torch.float32"):
        train(tiny_llama(), Tok(), [conversation], TrainingSettings(precision="bf16"), seed=0)
    with pytest.raises(TrainingError, match=r"precision 'fp32' trains a base loaded as torch.float32.*torch.bfloat16"):
        train(tiny_llama().to(torch.bfloat16), Tok(), [conversation], TrainingSettings(precision="fp32"), seed=0)
    with pytest.raises(TrainingError, match=r"unknown precision 'fp8' \(auto \| fp32 \| bf16\)"):
        TrainingSettings(precision="fp8").validate()


def test_auto_precision_is_bf16_on_cuda_and_fp32_on_cpu():
    """auto: bf16 on CUDA; fp32 on CPU, flags or not (bf16 matmuls measured slower there);
    explicit values kept; ``resolve_settings`` makes precision and layout concrete."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    resolve = precision.resolve_precision
    assert resolve(cpu, "lora", "auto") == resolve(cpu, "full", "auto") == "fp32"
    assert resolve(cuda, "lora", "auto") == resolve(cuda, "full", "auto") == "bf16"
    assert resolve(cpu, "lora", "fp32") == "fp32" and resolve(cuda, "lora", "fp32") == "fp32"
    assert resolve(cpu, "lora", "bf16") == "bf16"  # asked for: kept
    assert training_dtype(cpu, "lora") == torch.float32
    assert training_dtype(cuda, "lora") == torch.bfloat16
    assert training_dtype(cuda, "full", "bf16") == torch.float32  # full fine-tuning keeps fp32 masters
    with pytest.raises(TrainingError, match="'bf16' with full fine-tuning needs CUDA"):
        resolve(cpu, "full", "bf16")  # no such recipe on CPU: refused, not recorded wrongly
    resolved = resolve_settings(TrainingSettings(), cpu)
    assert (resolved.precision, resolved.pack_length, resolved.sequences_per_micro_batch) == ("fp32", 512, 1)
