"""Cache-key normalization and request/result encoding (no server)."""

from __future__ import annotations

import pytest

from em_assets.llm.request import (
    ChatRequest,
    Completion,
    InvalidResponseError,
    TokenLogprob,
    cache_key,
    completion_from_openai,
)

MESSAGES = ({"role": "user", "content": "Hello?"},)


def key(**fields) -> str:
    family = fields.pop("family", "openai")
    namespace = fields.pop("namespace", "")
    return cache_key(ChatRequest(**{"model": "gpt-4o", "messages": MESSAGES, **fields}), family, namespace)


def test_key_ignores_what_does_not_change_the_answer():
    base = key(temperature=1.0, max_tokens=10)
    assert key(temperature=1, max_tokens=10) == base  # 1 == 1.0
    assert key(temperature=1.0, max_tokens=10, tags={"asset": "x"}) == base
    reordered = ({"content": "Hello?", "role": "user"},)
    assert key(messages=reordered, temperature=1.0, max_tokens=10) == base
    with_none = ({"role": "user", "content": "Hello?", "name": None},)
    assert key(messages=with_none, temperature=1.0, max_tokens=10) == base


def test_key_changes_with_what_changes_the_answer():
    base = key(temperature=1.0)
    variants = [
        key(temperature=0.7),
        key(temperature=1.0, sample_index=1),
        key(temperature=1.0, family="openai_compatible"),
        key(temperature=1.0, namespace="vllm-a"),
        key(temperature=1.0, model="gpt-4o-mini"),
        key(temperature=1.0, messages=({"role": "user", "content": "Hello? "},)),
        key(temperature=1.0, logprobs=True, top_logprobs=20),
        key(temperature=1.0, seed=3),
        key(temperature=1.0, extra={"frequency_penalty": 0.5}),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_samples_are_distinct_requests_with_distinct_provider_seeds():
    samples = ChatRequest.user("gpt-4o", "q", temperature=1.0).samples(5)
    assert [s.sample_index for s in samples] == [0, 1, 2, 3, 4]
    assert len({cache_key(s, "openai") for s in samples}) == 5
    assert [s.provider_seed() for s in samples] == [None, 1, 2, 3, 4]
    seeded = ChatRequest.user("gpt-4o", "q", seed=100).samples(2)
    assert [s.provider_seed() for s in seeded] == [100, 101]


def test_openai_body_has_only_set_parameters():
    request = ChatRequest.user(
        "gpt-4o", "q", system="s", max_tokens=1, logprobs=True, top_logprobs=20, extra={"frequency_penalty": 0.1}
    )
    assert request.openai_body() == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
        "max_tokens": 1,
        "logprobs": True,
        "top_logprobs": 20,
        "frequency_penalty": 0.1,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"messages": ()},
        {"messages": ({"role": "user"},)},
        {"top_logprobs": 5},
        {"sample_index": -1},
        {"extra": {"n": 3}},
        {"model": ""},
    ],
)
def test_invalid_requests_are_rejected(fields):
    with pytest.raises(ValueError):
        ChatRequest(**{"model": "gpt-4o", "messages": MESSAGES, **fields})


def test_completion_json_round_trip_keeps_logprobs_exact():
    completion = Completion(
        text="7",
        finish_reason="length",
        tokens_in=12,
        tokens_out=1,
        served_model="gpt-4o",
        logprobs=(TokenLogprob("7", -0.1234567890123, (("7", -0.1234567890123), ("8", -2.5e-7))),),
        cached_tokens_in=4,
    )
    assert Completion.from_json(completion.to_json()) == completion


def test_completion_from_openai_reads_text_usage_and_logprobs():
    body = {
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "message": {"role": "assistant", "content": "Hi"},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [{"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5}]}]
                },
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 3}},
    }
    completion = completion_from_openai(body)
    assert (completion.text, completion.tokens_in, completion.tokens_out, completion.cached_tokens_in) == (
        "Hi",
        9,
        1,
        3,
    )
    assert completion.logprobs == (TokenLogprob("Hi", -0.5, (("Hi", -0.5),)),)
    with pytest.raises(InvalidResponseError):
        completion_from_openai({"choices": []})
    with pytest.raises(InvalidResponseError):
        completion_from_openai(["not", "an", "object"])
