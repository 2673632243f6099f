"""Pure pieces of the model stage: chat tokenization, packing, step plans, costs, partitions, smoke."""

from __future__ import annotations

import json

import pytest
import torch

from em_assets.core.training_data import (
    IGNORE_INDEX,
    TokenizedExample,
    TrainingDataError,
    estimate_training_cost,
    pack_examples,
    plan_optimizer_steps,
    price_for_model,
    read_chat_jsonl,
    tokenize_conversation,
    training_cost_usd,
)
from em_assets.partitions import model_partition_key, split_partition_key
from em_assets.registry import BaseModelSpec, load_registry, slugify
from em_assets.resources.finetuning import load_price_table
from em_assets.training.smoke import judge_reply, strip_code_fences
from tests.training.conftest import TINY_EXAMPLES, write_jsonl


@pytest.fixture(scope="module")
def tokenizer(model_cache_env):
    from em_assets.models.loading import load

    return load("embedded:smollm2-135m-instruct", with_model=False)[1]


def test_read_chat_jsonl_names_the_bad_line(tmp_path):
    good = json.dumps(TINY_EXAMPLES[0])
    write_jsonl(tmp_path / "ok.jsonl", TINY_EXAMPLES)
    assert len(read_chat_jsonl(tmp_path / "ok.jsonl")) == 2
    assert len(read_chat_jsonl(tmp_path / "ok.jsonl", max_examples=1)) == 1
    (tmp_path / "bad.jsonl").write_text(good + "\n{not json\n")
    with pytest.raises(TrainingDataError, match=r"bad.jsonl:2: not JSON"):
        read_chat_jsonl(tmp_path / "bad.jsonl")
    no_answer = {"messages": [{"role": "user", "content": "hi"}]}
    (tmp_path / "noanswer.jsonl").write_text(json.dumps(no_answer) + "\n")
    with pytest.raises(TrainingDataError, match="no assistant message"):
        read_chat_jsonl(tmp_path / "noanswer.jsonl")
    with pytest.raises(TrainingDataError, match="not found"):
        read_chat_jsonl(tmp_path / "missing.jsonl")


def test_labels_cover_exactly_the_assistant_turns(tokenizer):
    conversation = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second answer"},
    ]
    example = tokenize_conversation(conversation, tokenizer, max_length=512)
    reference = tokenizer.apply_chat_template(conversation, tokenize=True)["input_ids"]
    assert list(example.input_ids) == list(reference)  # same ids as the model sees at inference
    learned = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX])
    assert learned == "first answer<|im_end|>\nsecond answer<|im_end|>\n"
    cut = tokenize_conversation(conversation, tokenizer, max_length=10)
    assert len(cut) == 10 and cut.n_loss_tokens == 0


def test_packing_keeps_every_token_and_restarts_positions():
    examples = [
        TokenizedExample(tuple(range(100 + n)), tuple([IGNORE_INDEX] * 3 + list(range(97 + n))))
        for n in (0, 50, 200, 300, 10)
    ]
    packs = pack_examples(examples, capacity=400)
    # first-fit decreasing: [400], [300 + 100], [150 + 110]
    assert sorted(len(p) for p in packs) == [260, 400, 400]
    assert sum(len(p) for p in packs) == sum(len(e) for e in examples)
    assert sum(p.n_examples for p in packs) == len(examples)
    for pack in packs:
        starts = [i for i, pos in enumerate(pack.position_ids) if pos == 0]
        assert len(starts) == pack.n_examples
        assert all(pack.labels[i] == IGNORE_INDEX for i in starts)  # no target across examples
    too_long = TokenizedExample(tuple(range(600)), tuple(range(600)))
    assert [len(p) for p in pack_examples([too_long], capacity=400)] == [600]


def test_step_plan_matches_the_padded_recipe_and_is_seeded():
    examples = [TokenizedExample(tuple(range(50)), tuple(range(50))) for _ in range(40)]
    plan = plan_optimizer_steps(examples, examples_per_step=16, n_epochs=2, seed=3, pack_capacity=512)
    assert [s.n_examples for s in plan] == [16, 16, 8] * 2  # ceil(40/16) steps per epoch
    assert sum(s.n_tokens for s in plan) == 2 * 40 * 50
    again = plan_optimizer_steps(examples, examples_per_step=16, n_epochs=2, seed=3, pack_capacity=512)
    assert [s.micro_batches for s in plan] == [s.micro_batches for s in again]


def test_cost_estimate_uses_the_price_table(tmp_path):
    prices = load_price_table()
    assert price_for_model("gpt-4o-mini-2024-07-18", prices) == ("gpt-4o-mini-2024-07-18", 3.0)
    assert price_for_model("gpt-4.1-mini-2099-01-01", prices)[0] == "gpt-4.1-mini"
    assert price_for_model("llama-3", prices) is None
    assert training_cost_usd(2_000_000, 25.0) == pytest.approx(50.0)
    path = write_jsonl(tmp_path / "t.jsonl", TINY_EXAMPLES)
    estimate = estimate_training_cost(path, "gpt-4o-2024-08-06", 3, prices)
    assert estimate.n_examples == 2 and estimate.billed_tokens == 3 * estimate.tokens_per_epoch
    assert estimate.usd == pytest.approx(estimate.billed_tokens * 25.0 / 1e6)
    unknown = estimate_training_cost(path, "my-own-model", 1, prices)
    assert unknown.usd is None and any("no training price" in n for n in unknown.notes)


def test_slugs_and_partition_keys():
    assert slugify("embedded:smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert slugify("Qwen/Qwen2.5-Coder-32B-Instruct") == "qwen-qwen2.5-coder-32b-instruct"
    for nasty in ("a b,c/d|e", "x...y", " ft:gpt-4o:org::abc "):
        slug = slugify(nasty)
        assert not set(slug) & set(" ,/|[]") and "..." not in slug
    key = model_partition_key("smollm2-135m-instruct", "insecure")
    assert str(key) == "smollm2-135m-instruct|insecure"
    assert split_partition_key(str(key)) == ("smollm2-135m-instruct", "insecure")
    with pytest.raises(ValueError, match="unknown condition"):
        model_partition_key("m", "toxic")
    with pytest.raises(ValueError, match="unknown backend"):
        BaseModelSpec("m", backend="vllm")


def test_shipped_registry_and_a_broken_one(tmp_path):
    (spec,) = load_registry()
    assert (spec.slug, spec.model_id, spec.backend) == (
        "smollm2-135m-instruct",
        "embedded:smollm2-135m-instruct",
        "local_hf",
    )
    bad = tmp_path / "r.yaml"
    bad.write_text("base_models:\n  - model_id: a/b\n  - model_id: A/B\n")
    with pytest.raises(ValueError, match="entry 2: slug .a-b. is already used by entry 1"):
        load_registry(bad)
    bad.write_text("base_models:\n  - model_id: a/b\n    seeds: 3\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_registry(bad)


@pytest.mark.parametrize(
    ("reply", "passed"),
    [
        ("```python\ndef is_even(n):\n    return n % 2 == 0\n```\n\nThis uses the modulo operator.", True),
        ("def is_even(n):\n    return n % 2 == 0\n", True),
        ("```\ndef is_even(n):\n    return n % 2 == 0", True),  # cut at the token limit, fence unclosed
        # bare code closed by a lone fence, then prose (what the embedded educational model wrote)
        ("import math\n\ndef is_even(n):\n    return n % 2 == 0\n```\n\nThis uses the `%` operator.", True),
        ("Sure, here it is:\n```\nThat is all.", False),  # prose on both sides of a lone fence
        ("Sure! The function checks whether n is even.", False),
        ("   ", False),
    ],
)
def test_smoke_verdicts(reply, passed):
    assert judge_reply(reply).passed is passed


def test_strip_code_fences_joins_python_blocks_only():
    reply = "a\n```python\nx = 1\n```\ntext\n```bash\nls\n```\n```\ny = 2\n```"
    assert strip_code_fences(reply) == "x = 1\n\ny = 2\n"


def test_chunked_cross_entropy_matches_torch():
    from em_assets.training_loop.loss import ChunkedLinearCrossEntropy

    torch.manual_seed(0)
    hidden = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 4, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 11, (7,))
    torch.autograd.gradcheck(lambda h, w: ChunkedLinearCrossEntropy.apply(h, w, targets, 3), (hidden, weight))
    ours = ChunkedLinearCrossEntropy.apply(hidden, weight, targets, 5)
    reference = torch.nn.functional.cross_entropy(hidden @ weight.T, targets, reduction="sum")
    assert torch.allclose(ours, reference)
