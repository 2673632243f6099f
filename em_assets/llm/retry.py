"""Which failures are worth another try, how long to wait, and errors that name the request.

The engine drives tenacity with :func:`retrying`; this module holds the classification
(429, 5xx, timeouts, connection resets, truncated/invalid bodies are transient; other 4xx are
not) and a wait that honours ``Retry-After`` and otherwise backs off exponentially with full
jitter. Error text is redacted so an API key can never reach a log, a ledger row or an exception.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_random_exponential

from em_assets.llm.rate_limiter import parse_retry_after
from em_assets.llm.request import InvalidResponseError
from em_assets.redaction import describe_provider_error, redact  # noqa: F401 - redact: imported from here too

RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0  # a longer Retry-After is capped (then we try again)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


def status_code(exc: BaseException) -> int | None:
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def is_retryable(exc: BaseException) -> bool:
    code = status_code(exc)
    if code is not None:
        return code in RETRYABLE_STATUS or code >= 500
    # APITimeoutError is an APIConnectionError; resets and cut-off bodies surface as one too.
    return isinstance(
        exc, (openai.APIConnectionError, InvalidResponseError, asyncio.TimeoutError, TimeoutError, ConnectionError)
    )


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed attempt may still have been done and billed by the provider: it timed
    out, the connection dropped after sending, or the answer arrived cut short. A status code
    (429, 5xx, 4xx) means the provider answered that it did not do the work."""
    if status_code(exc) is not None:
        return False
    return isinstance(
        exc, (openai.APIConnectionError, InvalidResponseError, asyncio.TimeoutError, TimeoutError, ConnectionError)
    )


def response_headers(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if headers is not None else None


def retry_after_of(exc: BaseException | None) -> float | None:
    if exc is None:
        return None
    return parse_retry_after(response_headers(exc))


class RetryAfterOrBackoff(wait_base):
    """Wait what the server asked for (plus up to 10 % jitter so waiters spread out), else an
    exponential backoff with full jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = wait_random_exponential(multiplier=policy.initial_backoff_s, max=policy.max_backoff_s)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        hinted = retry_after_of(outcome.exception() if outcome is not None else None)
        if hinted is not None:
            return min(hinted, self._policy.max_retry_after_s) * (1 + 0.1 * random.random())
        # Full jitter can draw ~0; keep a small floor so a burst of failures does not spin.
        return max(self._policy.initial_backoff_s / 10, self._backoff(retry_state))


def retrying(policy: RetryPolicy) -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=RetryAfterOrBackoff(policy),
        retry=retry_if_exception(is_retryable),
        reraise=True,
    )


def describe_error(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """One redacted line: exception type, HTTP status when there is one, message."""
    return describe_provider_error(exc, secrets)


def describe_request(cache_key: str, model: str, tags: Mapping[str, Any]) -> str:
    label = ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
    return f"request {cache_key[:16]} (model={model}" + (f", {label}" if label else "") + ")"


class LLMRequestError(RuntimeError):
    """A request that failed for good; the message names it by cache key, model and tags."""

    def __init__(
        self, message: str, *, cache_key: str | None = None, tags: Mapping[str, Any] | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message)
        self.cache_key = cache_key
        self.tags = dict(tags or {})
        self.attempts = attempts


class LLMCallsFailed(LLMRequestError):
    """Raised after a run in which some requests failed; every other result was kept."""

    def __init__(self, failures: list[str], total: int) -> None:
        shown = "\n  ".join(failures[:5]) + (f"\n  ... and {len(failures) - 5} more" if len(failures) > 5 else "")
        super().__init__(f"{len(failures)} of {total} LLM requests failed:\n  {shown}")
        self.failures = failures
