"""What the fake model answers: the chat handler types, the tokenizer, synthesized logprobs and
the ``chat.completion`` JSON built from a handler's choices.

Everything here is a pure function of the request body, so a test can predict an answer (and
its hash in the server's counters) without a server.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from em_assets.testing.fake_openai.wire import canonical, new_id

_WORDS = (
    "the", "model", "answer", "is", "a", "question", "of", "code", "safe", "response", "I",
    "think", "that", "we", "should", "human", "AI", "world", "help", "future", "write", "function",
    "data", "user", "input", "value", "return", "secure", "file", "wish",
)  # fmt: skip
_TOKEN_PATTERN = re.compile(r"\s*\S+|\s+")


@dataclass
class FakeTokenLogprob:
    """One generated token, its logprob and the alternatives (most likely first)."""

    token: str
    logprob: float
    top_logprobs: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class FakeChoice:
    """What a chat handler returns for one choice; logprobs are synthesized when left None."""

    content: str
    logprobs: list[FakeTokenLogprob] | None = None
    finish_reason: str = "stop"


# (request body, choice index) -> the content of that choice, or a full FakeChoice.
ChatHandler = Callable[[dict[str, Any], int], "str | FakeChoice"]


def chat_request_hash(body: Mapping[str, Any]) -> str:
    """Identity of a chat request for the answer counters: sha256 of its canonical JSON."""
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256("\x1f".join(canonical(p) for p in parts).encode()).digest()


def tokenize(text: str) -> list[str]:
    """The fake server's tokenizer: words with their leading whitespace."""
    return _TOKEN_PATTERN.findall(text)


def max_tokens(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return int(value) if value is not None else None


def prompt_tokens(messages: Any) -> int:
    total = 3
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += 4 + len(tokenize(str(content or "")))
    return total


def request_tokens(body: Mapping[str, Any]) -> int:
    """The tokens a request may use (prompt + max_tokens, 16 when unset), for the rate-limit headers."""
    return prompt_tokens(body.get("messages")) + (max_tokens(body) or 16)


def default_chat_handler(body: dict[str, Any], index: int) -> FakeChoice:
    """A deterministic answer derived from the request: one number for one-token calls
    (judge-style), else 5-24 words."""
    digest = _digest(body.get("model"), body.get("messages"), body.get("seed"), index)
    if max_tokens(body) == 1:
        return FakeChoice(content=str(digest[0] % 101))
    n_words = 5 + digest[1] % 20
    words = [_WORDS[b % len(_WORDS)] for b in digest[2 : 2 + n_words]]
    return FakeChoice(content=" ".join(words) + ".")


def synthesize_logprobs(content: str, top_k: int, salt: bytes = b"") -> list[FakeTokenLogprob]:
    """Plausible logprobs: the chosen token holds 50-99 % of the mass, alternatives share a
    geometric tail, probabilities sum below 1 and are sorted most likely first."""
    entries = []
    for position, token in enumerate(tokenize(content)):
        digest = hashlib.sha256(salt + f"{position}\x1f{token}".encode()).digest()
        p_chosen = 0.5 + 0.49 * digest[0] / 255
        alternatives: list[tuple[str, float]] = [(token, math.log(p_chosen))]
        rest = (1 - p_chosen) * 0.9
        k_other = max(0, top_k - 1)
        weights = [0.5**j for j in range(k_other)]
        seen = {token.strip()}
        offset = digest[1]
        for j, weight in enumerate(weights):
            word = _WORDS[(offset + j) % len(_WORDS)]
            candidate = (" " if token.startswith(" ") else "") + word
            if word in seen:
                candidate = f"{candidate}{j}"
            seen.add(candidate.strip())
            alternatives.append((candidate, math.log(rest * weight / sum(weights))))
        entries.append(FakeTokenLogprob(token, alternatives[0][1], alternatives[: max(top_k, 0)]))
    return entries


def _logprobs_json(entries: list[FakeTokenLogprob], top_k: int) -> dict[str, Any]:
    def alternatives(entry: FakeTokenLogprob) -> list[dict[str, Any]]:
        return [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in entry.top_logprobs[:top_k]]

    return {
        "content": [
            {"token": e.token, "logprob": e.logprob, "bytes": list(e.token.encode()), "top_logprobs": alternatives(e)}
            for e in entries
        ],
        "refusal": None,
    }


def complete_chat(body: dict[str, Any], handler: ChatHandler | None) -> dict[str, Any]:
    """The ``chat.completion`` object for a validated request: ``n`` choices from the handler (the
    default one when None), cut at max_tokens, with logprobs and usage as OpenAI reports them."""
    handler = handler or default_chat_handler
    want_logprobs = bool(body.get("logprobs"))
    top_k = int(body.get("top_logprobs") or 0)
    limit = max_tokens(body)
    choices, completion_tokens = [], 0
    for index in range(int(body.get("n") or 1)):
        choice = handler(body, index)
        if isinstance(choice, str):
            choice = FakeChoice(content=choice)
        content, finish_reason = choice.content, choice.finish_reason
        tokens = tokenize(content)
        if limit is not None and len(tokens) > limit:
            content, finish_reason = "".join(tokens[:limit]), "length"
            tokens = tokens[:limit]
        completion_tokens += len(tokens)
        logprobs = None
        if want_logprobs:
            entries = choice.logprobs
            if entries is None:
                entries = synthesize_logprobs(content, top_k, salt=_digest(body.get("messages"), index))
            logprobs = _logprobs_json(entries, top_k)
        choices.append(
            {
                "index": index,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": logprobs,
                "finish_reason": finish_reason,
            }
        )
    n_prompt = prompt_tokens(body["messages"])
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": choices,
        "usage": {
            "prompt_tokens": n_prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": n_prompt + completion_tokens,
        },
        "system_fingerprint": "fp_fake",
    }
