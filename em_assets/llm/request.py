"""Chat requests, their results, and the content-addressed cache key.

A :class:`ChatRequest` is one sample: ``n`` samples of a question are ``n`` requests that differ
only in ``sample_index`` (see :meth:`ChatRequest.samples`), so each sample is its own cache entry
and its own ledger row, and a crash loses none of the samples already answered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Bump when the key payload or the meaning of a cached entry changes: old entries then miss.
CACHE_KEY_VERSION = 1

# Parameters whose numeric type carries no meaning: 1 and 1.0 must give the same key.
_FLOAT_PARAMS = frozenset(
    {"temperature", "top_p", "frequency_penalty", "presence_penalty", "repetition_penalty", "min_p"}
)
# Request fields sent as named arguments of the openai client; everything in ``extra`` goes
# through ``extra_body`` untouched.
OPENAI_PARAMS = ("temperature", "max_tokens", "top_p", "logprobs", "top_logprobs", "seed", "stop")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion call. ``tags`` label the ledger row and errors; they are not part of
    the cache key. ``extra`` holds other provider parameters (e.g. ``frequency_penalty``)."""

    model: str
    messages: tuple[Mapping[str, Any], ...]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    sample_index: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("ChatRequest needs a model")
        if isinstance(self.messages, (str, bytes)) or not self.messages:
            raise ValueError("ChatRequest needs a non-empty sequence of messages")
        messages = tuple(dict(m) for m in self.messages)
        for message in messages:
            if "role" not in message or "content" not in message:
                raise ValueError(f"every message needs 'role' and 'content': {message!r}")
        object.__setattr__(self, "messages", messages)
        if self.stop is not None:
            object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs=True")
        if self.sample_index < 0:
            raise ValueError("sample_index must be >= 0")
        for name in OPENAI_PARAMS + ("model", "messages", "n", "stream"):
            if name in self.extra:
                raise ValueError(f"{name!r} is a ChatRequest field (or unsupported), not an extra parameter")

    @classmethod
    def user(cls, model: str, prompt: str, *, system: str | None = None, **params: Any) -> ChatRequest:
        """A request of one user message (after an optional system message)."""
        messages = ([{"role": "system", "content": system}] if system is not None else []) + [
            {"role": "user", "content": prompt}
        ]
        return cls(model=model, messages=tuple(messages), **params)

    def samples(self, n: int) -> list[ChatRequest]:
        """``n`` independent samples of this request (sample_index 0..n-1)."""
        return [dataclasses.replace(self, sample_index=i) for i in range(n)]

    def provider_seed(self) -> int | None:
        """The seed sent to the provider: distinct per sample so that samples are independent
        yet reproducible where the provider honours seeds (vLLM does, OpenAI tries to)."""
        if self.seed is None:
            return self.sample_index or None
        return self.seed + self.sample_index

    def openai_body(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/chat/completions`` (also a Batch API line's body)."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in self.messages]}
        params = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "logprobs": True if self.logprobs else None,
            "top_logprobs": self.top_logprobs,
            "seed": self.provider_seed(),
            "stop": list(self.stop) if self.stop is not None else None,
        }
        body.update({k: v for k, v in params.items() if v is not None})
        body.update(self.extra)
        return body


def _normalize_params(params: Mapping[str, Any]) -> dict[str, Any]:
    normalized = {}
    for name, value in params.items():
        if value is None:
            continue
        if name in _FLOAT_PARAMS and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite")
        normalized[name] = value
    return normalized


def cache_key(request: ChatRequest, endpoint_family: str, namespace: str = "") -> str:
    """sha256 of the normalized request: what determines the answer, and nothing else.

    Included: key version, endpoint family, optional namespace (to separate two endpoints of
    one family that serve different weights under one name), model, messages (keys sorted,
    None values dropped), parameters (None dropped, 1 == 1.0) and the sample index.
    Excluded: tags, base_url host and port, API key.
    """
    messages = [{k: v for k, v in m.items() if v is not None} for m in request.messages]
    params = _normalize_params(
        {
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "top_p": request.top_p,
            "logprobs": True if request.logprobs else None,
            "top_logprobs": request.top_logprobs,
            "seed": request.seed,
            "stop": list(request.stop) if request.stop is not None else None,
            **request.extra,
        }
    )
    payload = {
        "v": CACHE_KEY_VERSION,
        "family": endpoint_family,
        "ns": namespace,
        "model": request.model,
        "messages": messages,
        "params": params,
        "sample": request.sample_index,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token, its logprob, and the top alternatives (token, logprob), best first."""

    token: str
    logprob: float
    top_logprobs: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Completion:
    """What a backend returned for one request; exactly what the cache stores."""

    text: str
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    served_model: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    cached_tokens_in: int = 0  # provider-side prompt cache (cheaper input)

    def to_json(self) -> str:
        logprobs = (
            None
            if self.logprobs is None
            else [[e.token, e.logprob, [[t, lp] for t, lp in e.top_logprobs]] for e in self.logprobs]
        )
        return canonical_json(
            {
                "text": self.text,
                "finish_reason": self.finish_reason,
                "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out,
                "served_model": self.served_model,
                "logprobs": logprobs,
                "cached_tokens_in": self.cached_tokens_in,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Completion:
        data = json.loads(text)
        logprobs = data.get("logprobs")
        return cls(
            text=data["text"],
            finish_reason=data.get("finish_reason"),
            tokens_in=int(data.get("tokens_in") or 0),
            tokens_out=int(data.get("tokens_out") or 0),
            served_model=data.get("served_model"),
            logprobs=None
            if logprobs is None
            else tuple(TokenLogprob(t, float(lp), tuple((a, float(b)) for a, b in top)) for t, lp, top in logprobs),
            cached_tokens_in=int(data.get("cached_tokens_in") or 0),
        )


class InvalidResponseError(ValueError):
    """A 200 response whose body is not a usable chat completion (truncated, no choices...)."""


def completion_from_openai(body: Any) -> Completion:
    """Parse an OpenAI chat completion JSON object (sync response or Batch API line body)."""
    if not isinstance(body, Mapping):
        raise InvalidResponseError(f"chat completion is not a JSON object but {type(body).__name__}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise InvalidResponseError("chat completion has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise InvalidResponseError("chat completion choice has no message")
    text = message.get("content")
    if text is None:
        text = message.get("refusal") or ""
    logprobs = None
    if isinstance(choice.get("logprobs"), Mapping) and choice["logprobs"].get("content") is not None:
        try:
            logprobs = tuple(
                TokenLogprob(
                    str(entry["token"]),
                    float(entry["logprob"]),
                    tuple((str(alt["token"]), float(alt["logprob"])) for alt in entry.get("top_logprobs") or ()),
                )
                for entry in choice["logprobs"]["content"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidResponseError(f"malformed logprobs: {exc}") from exc
    usage = body.get("usage") if isinstance(body.get("usage"), Mapping) else {}
    details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), Mapping) else {}
    return Completion(
        text=str(text),
        finish_reason=choice.get("finish_reason"),
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
        served_model=body.get("model"),
        logprobs=logprobs,
        cached_tokens_in=int(details.get("cached_tokens") or 0),
    )


@dataclass(frozen=True)
class ChatResult:
    """The outcome of one request: a completion, or an error after all tries."""

    request: ChatRequest
    cache_key: str
    completion: Completion | None
    cache_hit: bool
    attempts: int
    latency_s: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.completion is not None

    @property
    def text(self) -> str | None:
        return self.completion.text if self.completion else None

    @property
    def logprobs(self) -> tuple[TokenLogprob, ...] | None:
        return self.completion.logprobs if self.completion else None

    def first_token_top_logprobs(self) -> dict[str, float]:
        """{token: logprob} of the alternatives for the first generated token (judge scoring)."""
        if not self.logprobs:
            return {}
        return dict(self.logprobs[0].top_logprobs)


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """A tokenizer-free estimate (~4 characters a token) for rate-limit budgeting."""
    chars = sum(len(canonical_json(m.get("content", ""))) for m in messages)
    return 3 + 4 * len(messages) + chars // 4
