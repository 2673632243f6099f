"""The local Hugging Face backend on the real embedded SmolLM2-135M: batched generation with
left padding and batched next-token top-k logprobs, through the same engine interface."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from em_assets.llm import ChatRequest, LLMEngine, LocalHFBackend
from em_assets.models.loading import DEFAULT_BASE_MODEL

pytestmark = pytest.mark.slow

PROMPTS = ["What is 2+2?", "Name a colour.", "Write one word about the sea, please, in lower case."]


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalHFBackend]:
    import torch

    # One intra-op thread: on a busy 2-core machine two spinning OpenMP threads make this
    # tiny model ~20x slower; one thread keeps the test well under its time budget.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    backend = LocalHFBackend(batch_size=2)
    backend.model_and_tokenizer(DEFAULT_BASE_MODEL)  # load once for the module
    yield backend
    torch.set_num_threads(threads)


def test_batched_generation_and_next_token_logprobs(backend, tmp_path, data_env):
    engine = LLMEngine(backend, cache=tmp_path / "cache.sqlite")
    generate = [ChatRequest.user(DEFAULT_BASE_MODEL, p, max_tokens=5, temperature=0) for p in PROMPTS]
    score = [
        ChatRequest.user(DEFAULT_BASE_MODEL, p, max_tokens=1, temperature=0, logprobs=True, top_logprobs=5)
        for p in PROMPTS
    ]

    results = engine.complete_many(generate + score)

    generated, scored = results[:3], results[3:]
    for result in generated:
        assert result.text.strip() and 1 <= result.completion.tokens_out <= 5 and result.completion.tokens_in > 10
    for result in scored:
        top = result.logprobs[0].top_logprobs
        values = [lp for _, lp in top]
        assert len(top) == 5 and values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        assert sum(math.exp(v) for v in values) <= 1 + 1e-6
        assert result.text == top[0][0] and result.logprobs[0].logprob == pytest.approx(values[0])
    # Left padding does not change the answer: the longest prompt (no padding) agrees with the
    # shortest (most padding) scored alone, and greedy generation starts with the top token.
    for prompt, batched, batched_gen in zip(PROMPTS, scored, generated, strict=True):
        (alone,) = backend.next_token_logprobs(DEFAULT_BASE_MODEL, [[{"role": "user", "content": prompt}]], 5)
        assert [t for t, _ in alone] == [t for t, _ in batched.logprobs[0].top_logprobs]
        assert [lp for _, lp in alone] == pytest.approx([lp for _, lp in batched.logprobs[0].top_logprobs], abs=1e-3)
        assert batched_gen.text.startswith(batched.text.strip()) or batched.text.strip() == ""
    assert engine.summary().cost_usd == 0.0
    assert all(r.cache_hit for r in engine.complete_many(generate + score))
    engine.close()


def test_closing_the_engine_frees_the_resident_model(tmp_path, data_env):
    """A pipeline run opens several engines in one process; each frees its model on close,
    without waiting for the garbage collector (a model left in a reference cycle stays
    resident while the next asset loads or trains)."""
    import weakref

    backend = LocalHFBackend(batch_size=1)
    with LLMEngine(backend, cache=tmp_path / "cache.sqlite") as engine:
        (result,) = engine.complete_many([ChatRequest.user(DEFAULT_BASE_MODEL, "Hi", max_tokens=2, temperature=0)])
        assert result.text
        model = weakref.ref(backend.model_and_tokenizer(DEFAULT_BASE_MODEL)[0])
        assert model() is not None
    assert model() is None and backend._loaded is None
    # Still usable: the next request loads the model again.
    assert backend.model_and_tokenizer(DEFAULT_BASE_MODEL)[0] is not None
