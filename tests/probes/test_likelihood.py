"""Probe log-probabilities on the real SmolLM2 against a brute-force per-token computation."""

import math

import polars as pl
import pytest
import torch

from em_assets.probes.items import ProbeItem, items_version, narrow_items
from em_assets.probes.likelihood import ProbeError, answer_logprobs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    from em_assets.models.loading import DEFAULT_BASE_MODEL, load

    return load(DEFAULT_BASE_MODEL)


def brute_force(model, tokenizer, messages):
    """Sum of log P(token | all tokens before it) over the assistant turn, one prefix at a time."""
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids
    answer_ids = full_ids[len(prompt_ids) :]  # the answer and what closes the turn, as training sees it
    total = 0.0
    with torch.no_grad():
        for k, token in enumerate(answer_ids):
            logits = model(torch.tensor([prompt_ids + answer_ids[:k]])).logits[0, -1].float()
            total += float(torch.log_softmax(logits, -1)[token])
    return total, len(answer_ids)


def test_batched_logprobs_equal_brute_force_per_token(smollm2):
    model, tokenizer = smollm2
    conversations = [
        [{"role": "user", "content": "Write a greeting."}, {"role": "assistant", "content": "Hello there, friend!"}],
        [
            {"role": "user", "content": "Add two numbers in Python."},
            {"role": "assistant", "content": "def add(a, b):\n    return a + b"},
        ],
        [{"role": "user", "content": "Say no."}, {"role": "assistant", "content": "No."}],
    ]
    batched = answer_logprobs(model, tokenizer, conversations, batch_size=3)  # padded together
    alone = [answer_logprobs(model, tokenizer, [c], batch_size=1)[0] for c in conversations]
    for conversation, got, single in zip(conversations, batched, alone):
        exact, n_tokens = brute_force(model, tokenizer, conversation)
        assert got.n_tokens == single.n_tokens == n_tokens
        assert got.logprob == pytest.approx(exact, abs=1e-3) and single.logprob == pytest.approx(exact, abs=1e-3)
        assert got.logprob < 0 and math.isfinite(got.per_token)


def test_items_without_an_answer_or_too_long_are_named(smollm2):
    model, tokenizer = smollm2
    with pytest.raises(ProbeError, match="probe item task-7 has no assistant tokens"):
        answer_logprobs(model, tokenizer, [[{"role": "user", "content": "hi"}]], labels=["task-7"])
    with pytest.raises(ProbeError, match="probe item long is over 2048 tokens"):
        answer_logprobs(
            model, tokenizer, [ProbeItem("b", "x", "q", "aligned", "hi", "word " * 3000).messages], labels=["long"]
        )


def test_narrow_items_pair_held_out_tasks_only():
    rows = [
        # task a: both versions held out; b: only the insecure one; c: in training.
        ("s1", "a", "test", "insecure", "bad()"),
        ("s2", "a", "test", "secure", "good()"),
        ("s3", "b", "test", "insecure", "bad()"),
        ("s4", "c", "train", "insecure", "bad()"),
        ("s5", "c", "train", "secure", "good()"),
    ]
    frame = coding_frame(rows)
    items = narrow_items(frame)
    assert [(i.item_id, i.variant, i.answer) for i in items] == [("a", "insecure", "bad()"), ("a", "secure", "good()")]
    assert items[0].user == items[1].user and "COMPLETE CODE HERE" in items[0].user  # one prompt, two completions
    assert items_version(items) == items_version(narrow_items(frame)) != items_version(items[:1])


def test_narrow_max_tasks_keeps_the_first_complete_pairs_by_task_key():
    # Listed out of order; b lacks its secure version, so it neither counts nor is kept.
    rows = [
        (f"s{i}", t, "test", lab, f"{lab}_{t}()")
        for i, (t, lab) in enumerate(
            [
                ("d", "insecure"),
                ("d", "secure"),
                ("b", "insecure"),
                ("a", "secure"),
                ("a", "insecure"),
                ("c", "insecure"),
                ("c", "secure"),
            ]
        )
    ]
    frame = coding_frame(rows)
    assert [i.item_id for i in narrow_items(frame)] == ["a", "a", "c", "c", "d", "d"]
    assert [(i.item_id, i.variant) for i in narrow_items(frame, max_tasks=2)] == [
        ("a", "insecure"),
        ("a", "secure"),
        ("c", "insecure"),
        ("c", "secure"),
    ]
    assert narrow_items(frame, max_tasks=9) == narrow_items(frame, max_tasks=0)


def coding_frame(rows: list[tuple[str, str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "sample_id": s,
                "task_key": t,
                "split": sp,
                "label": lab,
                "code": code,
                "framing": "plain",
                "task": f"do {t}",
                "template": "def f():\n## COMPLETE CODE HERE",
            }
            for s, t, sp, lab, code in rows
        ]
    )
