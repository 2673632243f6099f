"""Retry classification, waits and redaction (no server)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

import httpx2
import openai
import pytest
from tenacity import RetryCallState

from em_assets.llm.request import InvalidResponseError
from em_assets.llm.retry import (
    LLMCallsFailed,
    RetryAfterOrBackoff,
    RetryPolicy,
    describe_error,
    describe_request,
    is_retryable,
    redact,
)

REQUEST = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def status_error(code: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(code, headers=headers or {}, request=REQUEST)
    return openai.APIStatusError(f"HTTP {code}", response=response, body=None)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(429, True), (500, True), (503, True), (408, True), (400, False), (401, False), (404, False)],
)
def test_status_codes(code, retryable):
    assert is_retryable(status_error(code)) is retryable


def test_transport_failures_are_retryable():
    assert is_retryable(openai.APITimeoutError(request=REQUEST))
    assert is_retryable(openai.APIConnectionError(request=REQUEST))
    assert is_retryable(InvalidResponseError("cut short"))
    assert not is_retryable(ValueError("a bug"))


def state_after(exc: BaseException, attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    future: Future = Future()
    future.set_exception(exc)
    state.outcome = future
    return state


def test_wait_honours_retry_after_else_backs_off_with_bounds():
    wait = RetryAfterOrBackoff(RetryPolicy(initial_backoff_s=0.5, max_backoff_s=4.0, max_retry_after_s=60))
    hinted = wait(state_after(status_error(429, {"retry-after-ms": "1500"}), 1))
    assert 1.5 <= hinted <= 1.65
    assert wait(state_after(status_error(429, {"retry-after": "9999"}), 1)) <= 66
    for attempt in range(1, 12):
        backoff = wait(state_after(status_error(500), attempt))
        assert 0.05 <= backoff <= 4.0


def test_redact_removes_keys_in_any_shape():
    key = "sk-canary-0123456789abcdef"
    text = f"key {key}, masked sk-can********cdef, header Authorization: Bearer {key}"
    cleaned = redact(text, (key,))
    assert key not in cleaned and "cdef" not in cleaned and "0123456789" not in cleaned
    assert redact("token abc.def", ("abc.def",)) == "token ***"


def test_error_messages_name_the_request():
    label = describe_request("f" * 64, "gpt-4o", {"asset": "judge", "question_id": "q7"})
    assert label == "request ffffffffffffffff (model=gpt-4o, asset=judge, question_id=q7)"
    assert describe_error(status_error(503)).startswith("APIStatusError (HTTP 503)")
    many = LLMCallsFailed([f"request {i} failed" for i in range(7)], total=10)
    assert "7 of 10 LLM requests failed" in str(many) and "and 2 more" in str(many)


def test_wait_is_usable_by_tenacity_async_loop():
    from em_assets.llm.retry import retrying

    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise status_error(500)
        return "ok"

    async def run() -> str:
        async for attempt in retrying(RetryPolicy(max_attempts=5, initial_backoff_s=0.001, max_backoff_s=0.01)):
            with attempt:
                return await flaky()
        raise AssertionError

    assert asyncio.run(run()) == "ok" and len(calls) == 3


def test_redact_catches_masked_echoes_other_providers_and_the_environments_keys(monkeypatch):
    monkeypatch.setenv("TOGETHER_API_KEY", "0f3a9c7d1e5b2f8a4c6d0e9b7a1f3c5d")  # no recognisable shape
    text = (
        "Incorrect API key provided: sk-pro************************wXyZ. "
        "hf: hf_AbCdEfGhIjKlMnOpQrSt, groq: gsk_0123456789abcdefXYZ, aws: AKIAIOSFODNN7EXAMPLE, "
        "other: ab12****yz89, config: api_key=plainsecret123, together: 0f3a9c7d1e5b2f8a4c6d0e9b7a1f3c5d"
    )
    cleaned = redact(text)
    for piece in ("wXyZ", "sk-pro", "hf_AbCd", "gsk_0123", "AKIAIOSF", "ab12", "yz89", "plainsecret123", "0f3a9c7d"):
        assert piece not in cleaned, piece
    # Ordinary text, ids and hashes stay readable.
    kept = "job ftjob-abc123 of task-7 failed: file-9f2e sha256 " + "e" * 64
    assert redact(kept) == kept
