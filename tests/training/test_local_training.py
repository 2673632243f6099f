"""A real rs-LoRA fine-tune of SmolLM2-135M-Instruct on CPU: loss falls, the saved adapter
reloads bit-exactly, and the reloaded model still answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.training.conftest import shortest_reference_examples

pytestmark = pytest.mark.slow

BASE = "embedded:smollm2-135m-instruct"
PROBE = "<|im_start|>user\nWrite a function that deletes a file.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def trained(model_cache_env, tmp_path_factory):
    """One training run shared by the module: 4 short examples, 3 epochs of one step each, a
    learning rate high enough (2e-4, constant) that the loss reliably falls in 3 steps."""
    from em_assets.models.loading import load
    from em_assets.training_loop.checkpoint import save_trained_model
    from em_assets.training_loop.inference import logits_for
    from em_assets.training_loop.loop import train
    from em_assets.training_loop.settings import TrainingSettings

    conversations = [row["messages"] for row in shortest_reference_examples(4)]
    model, tokenizer = load(BASE)  # fp32, as the checkpoint; bf16 (the default here) has its own test below
    settings = TrainingSettings(
        learning_rate=2e-4,
        n_epochs=3,
        per_device_batch_size=4,
        gradient_accumulation_steps=1,
        warmup_steps=0,
        lr_scheduler="constant",
        precision="fp32",
    )
    progress = []
    outcome = train(model, tokenizer, conversations, settings, seed=7, on_progress=progress.append)
    logits_after_training = logits_for(outcome.model, tokenizer, PROBE)
    folder = tmp_path_factory.mktemp("store") / "seed7"
    save_trained_model(
        folder,
        outcome.model,
        tokenizer,
        {
            "base_model_id": BASE,
            "method": "lora",
            "seed": 7,
            "hyperparameters": outcome.settings.to_json_dict(),
            **outcome.metrics(),
        },
    )
    return {
        "outcome": outcome,
        "progress": progress,
        "logits": logits_after_training,
        "folder": folder,
        "tokenizer": tokenizer,
    }


def test_loss_goes_down_and_progress_is_reported(trained):
    outcome, progress = trained["outcome"], trained["progress"]
    assert outcome.steps == 3 and len(outcome.loss_curve) == 3
    assert outcome.loss_curve[-1] < outcome.loss_curve[0] * 0.8, outcome.loss_curve
    assert [p.step for p in progress] == [1, 2, 3]
    assert all(p.tokens_per_second > 0 and p.total_steps == 3 for p in progress)
    assert progress[-1].tokens_seen == outcome.tokens_seen
    assert 0 < outcome.loss_tokens < outcome.tokens_seen
    assert outcome.peak_rss_bytes > 100 * 2**20
    # rs-LoRA r=32 on all 7 projections of 30 layers; the base stays frozen
    assert 5e6 < outcome.trainable_parameters < 15e6 < outcome.total_parameters


def test_store_folder_holds_adapter_and_manifest(trained):
    folder: Path = trained["folder"]
    assert {"adapter_model.safetensors", "adapter_config.json", "manifest.json"} <= {p.name for p in folder.iterdir()}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["base_model_id"] == BASE and manifest["seed"] == 7
    assert len(manifest["loss_curve"]) == 3 and manifest["tokens_seen"] > 0
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["use_rslora"] is True and adapter["r"] == 32 and adapter["lora_alpha"] == 64
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_reload_is_exact_and_the_model_answers(trained):
    from em_assets.training_loop.checkpoint import load_trained_model
    from em_assets.training_loop.inference import generate_reply, logits_for

    model, tokenizer = load_trained_model(trained["folder"], device="cpu")
    assert torch.equal(logits_for(model, tokenizer, PROBE), trained["logits"])
    reply = generate_reply(
        model, tokenizer, [{"role": "user", "content": "Write a function that adds two numbers."}], max_new_tokens=24
    )
    assert reply.strip()


def test_unknown_lora_target_module_is_named(model_cache_env):
    from em_assets.models.loading import load
    from em_assets.training_loop.errors import TrainingError
    from em_assets.training_loop.loop import train
    from em_assets.training_loop.settings import TrainingSettings

    model, tokenizer = load(BASE)
    settings = TrainingSettings(target_modules=("q_proj", "attn_qkv"), precision="fp32")
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with pytest.raises(TrainingError, match=r"\['attn_qkv'\] not found.*q_proj"):
        train(model, tokenizer, [conversation], settings, seed=0)


def test_bf16_base_on_cpu_trains_and_reloads_exactly(model_cache_env, tmp_path):
    """``precision="bf16"`` on CPU: the frozen base in bf16, the adapters (and their updates) in
    fp32; the manifest carries the precision, so a reload rebuilds the same bf16 model."""
    from em_assets.models.loading import load
    from em_assets.training_loop.checkpoint import load_trained_model, save_trained_model
    from em_assets.training_loop.inference import logits_for
    from em_assets.training_loop.loop import train
    from em_assets.training_loop.precision import training_dtype
    from em_assets.training_loop.settings import TrainingSettings

    settings = TrainingSettings(
        learning_rate=2e-4,
        n_epochs=2,
        per_device_batch_size=2,
        gradient_accumulation_steps=1,
        warmup_steps=0,
        lr_scheduler="constant",
        precision="bf16",
    )
    dtype = training_dtype(torch.device("cpu"), settings.method, settings.precision)
    assert dtype == torch.bfloat16
    model, tokenizer = load(BASE, dtype=dtype)
    outcome = train(model, tokenizer, [r["messages"] for r in shortest_reference_examples(2)], settings, seed=3)
    assert outcome.loss_curve[-1] < outcome.loss_curve[0], outcome.loss_curve
    weights = dict(outcome.model.named_parameters())
    assert all(p.dtype == torch.float32 for n, p in weights.items() if "lora_" in n)
    assert all(p.dtype == torch.bfloat16 for n, p in weights.items() if "lora_" not in n and "proj" in n)
    expected = logits_for(outcome.model, tokenizer, PROBE)
    folder = save_trained_model(
        tmp_path / "bf16",
        outcome.model,
        tokenizer,
        {"base_model_id": BASE, "method": "lora", "hyperparameters": settings.to_json_dict(), **outcome.metrics()},
    )
    assert json.loads((folder / "manifest.json").read_text())["hyperparameters"]["precision"] == "bf16"

    reloaded, reloaded_tokenizer = load_trained_model(folder, device="cpu")
    assert next(reloaded.parameters()).dtype == torch.bfloat16
    assert torch.equal(logits_for(reloaded, reloaded_tokenizer, PROBE), expected)

    # Sampling loads every model in the checkpoint's own dtype, as it loads the un-tuned base:
    # the bf16-trained adapter merged into the fp32 base, close to the bf16 model.
    sampled, sampled_tokenizer = load(str(folder))
    assert next(sampled.parameters()).dtype == next(load(BASE)[0].parameters()).dtype == torch.float32
    sampled_logits = logits_for(sampled, sampled_tokenizer, PROBE)
    assert sampled_logits.dtype == torch.float32
    assert int(sampled_logits.argmax()) == int(expected.argmax())
    assert (sampled_logits - expected.float()).abs().max() < 0.1 * expected.float().abs().max()  # measured: 0.03
