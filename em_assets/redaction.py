"""Keys out of every text that leaves a provider call: error messages, logs, stored rows.

A provider's error body may echo the key, whole or masked (OpenAI's 401 shows the first 6 and
last 4 characters), so each provider error is turned into one redacted line before anything
logs, raises or stores it. Redacted: the values of the key variables in the environment, and
anything shaped like a key (``sk-...`` and other providers' prefixes, masked ``abc***wxyz``
forms, bearer tokens, ``api_key=...`` assignments).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

MASK = "***"
# Environment variables whose values are secrets; checked at each call (keys are read late).
_SECRET_ENV = re.compile(r"(?i)(API_?KEY|TOKEN|SECRET|PASSWORD)$")
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words

_KEY_SHAPES = (
    # OpenAI-style and similar prefixed keys, masked or not (sk-, sk-proj-, sk-or-, rk-, pk-).
    re.compile(r"\b(?:sk|rk|pk)[-_][A-Za-z0-9_\-*.]{4,}"),
    # Other providers' key prefixes (Hugging Face, Groq, xAI, Google, AWS access keys).
    re.compile(r"\b(?:hf_|gsk_|xai-)[A-Za-z0-9_\-*]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{12,}"),
    # A masked key: characters around a run of asterisks ("abc123****wxyz").
    re.compile(r"[A-Za-z0-9_\-.]*\*{3,}[A-Za-z0-9_\-.]*"),
)
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")
_ASSIGNED = re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+")


def env_secrets() -> tuple[str, ...]:
    """Values of the environment's key-like variables (``*_API_KEY``, ``*_TOKEN``, ...)."""
    return tuple(
        value for name, value in os.environ.items() if _SECRET_ENV.search(name) and len(value) >= _MIN_SECRET_LENGTH
    )


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secrets, the environment's keys, or anything shaped like a key."""
    for secret in sorted({*secrets, *env_secrets()}, key=len, reverse=True):
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    for pattern in _KEY_SHAPES:
        text = pattern.sub(MASK, text)
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    return _ASSIGNED.sub(rf"\g<1>{MASK}", text)


def provider_message(exc: BaseException) -> str:
    """The provider's own message of an API error (the ``error.message`` of its body when it
    sent one), else the exception's text; not yet redacted."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return getattr(exc, "message", None) or str(exc) or repr(exc)


def describe_provider_error(exc: BaseException, secrets: Iterable[str] = (), *, limit: int = 500) -> str:
    """One redacted line: exception type, HTTP status when there is one, the provider's message."""
    status = getattr(exc, "status_code", None)
    text = (
        f"{type(exc).__name__}"
        + (f" (HTTP {status})" if isinstance(status, int) else "")
        + f": {provider_message(exc)}"
    )
    return redact(" ".join(text.split())[:limit], secrets)


@contextmanager
def provider_errors_redacted(wrap: Callable[[str], BaseException], secrets: Iterable[str] = ()) -> Iterator[None]:
    """Re-raise a provider (``openai``) error escaping the block, or any error whose text holds
    something key-like, as ``wrap(one redacted line)`` without its chain: a traceback prints
    every chained exception's text, so the original must not ride along."""
    import openai

    secrets = tuple(secrets)
    try:
        yield
    except Exception as exc:
        if isinstance(exc, openai.OpenAIError):
            raise wrap(describe_provider_error(exc, secrets)) from None
        text = str(exc)
        if redact(text, secrets) != text:
            raise wrap(redact(text, secrets)) from None
        raise


def redacting(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """``log`` with every message redacted (a no-op logger for None)."""
    if log is None:
        return lambda message: None
    return lambda message: log(redact(message))
