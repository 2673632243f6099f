"""OpenAI and OpenAI-compatible endpoints (vLLM, Together, OpenRouter, llama.cpp server) through
the official ``AsyncOpenAI`` client, with the client's own retries off: the engine retries.

The API key is read from the environment when a session opens, never stored in config, and
scrubbed from error text.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from em_assets.llm.backends.base import BackendReply
from em_assets.llm.request import OPENAI_PARAMS, ChatRequest, InvalidResponseError, completion_from_openai

OPENAI_HOST = "api.openai.com"
DEFAULT_API_KEY_ENV_VAR = "OPENAI_API_KEY"
# Sent to compatible servers that need no key (a local vLLM); the client insists on one.
NO_KEY_PLACEHOLDER = "no-key"


class MissingAPIKeyError(RuntimeError):
    pass


def endpoint_family(base_url: str | None) -> str:
    """``openai`` for OpenAI itself, ``openai_compatible`` for any other base_url."""
    if not base_url:
        return "openai"
    return "openai" if urlsplit(base_url).hostname == OPENAI_HOST else "openai_compatible"


def base_url_host(base_url: str | None) -> str:
    """host[:port] of the endpoint, without user info (credentials) or path."""
    if not base_url:
        return OPENAI_HOST
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


class OpenAIBackend:
    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key_env_var: str = DEFAULT_API_KEY_ENV_VAR,
        timeout_s: float = 60.0,
    ) -> None:
        self.base_url = base_url or None
        self.api_key_env_var = api_key_env_var
        self.timeout_s = timeout_s
        self.family = endpoint_family(self.base_url)
        self.host = base_url_host(self.base_url)
        self._client: Any = None

    def _api_key(self) -> str:
        key = os.environ.get(self.api_key_env_var, "")
        if key:
            return key
        if self.family == "openai":
            raise MissingAPIKeyError(
                f"no API key: set the environment variable {self.api_key_env_var} "
                "(the engine reads keys only from the environment)"
            )
        return NO_KEY_PLACEHOLDER

    def secrets(self) -> tuple[str, ...]:
        key = os.environ.get(self.api_key_env_var, "")
        return (key,) if key else ()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("backend not opened")
        return self._client

    async def open(self) -> None:
        from openai import AsyncOpenAI

        if self._client is None:
            self._client = AsyncOpenAI(
                api_key=self._api_key(), base_url=self.base_url, max_retries=0, timeout=self.timeout_s
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(self, request: ChatRequest) -> BackendReply:
        body = request.openai_body()
        named = {k: body.pop(k) for k in OPENAI_PARAMS if k in body}
        model, messages = body.pop("model"), body.pop("messages")
        raw = await self.client.chat.completions.with_raw_response.create(
            model=model, messages=messages, **named, extra_body=body or None
        )
        try:
            parsed = json.loads(raw.content)
        except ValueError as exc:  # a 200 whose body was cut short or is not JSON
            raise InvalidResponseError(f"response body is not valid JSON ({exc.msg})") from None
        return BackendReply(completion_from_openai(parsed), dict(raw.headers))

    # ---------------------------------------------------------------------------- Batch API
    async def upload_batch_file(self, jsonl: bytes, filename: str) -> str:
        uploaded = await self.client.files.create(file=(filename, jsonl, "application/jsonl"), purpose="batch")
        return str(uploaded.id)

    async def find_file(self, filename: str, n_bytes: int, purpose: str) -> str | None:
        """The newest file with this name and size, if the provider has one."""
        matches = [
            f async for f in self.client.files.list(purpose=purpose) if f.filename == filename and f.bytes == n_bytes
        ]
        return str(max(matches, key=lambda f: f.created_at).id) if matches else None

    async def create_batch(self, input_file_id: str, metadata: dict[str, str], completion_window: str) -> Any:
        return await self.client.batches.create(
            input_file_id=input_file_id,
            endpoint="/v1/chat/completions",
            completion_window=completion_window,
            metadata=metadata,
        )

    async def retrieve_batch(self, batch_id: str) -> Any:
        return await self.client.batches.retrieve(batch_id)

    async def iter_batches(self) -> AsyncIterator[Any]:
        """The account's batches, newest first (auto-paginated)."""
        async for batch in self.client.batches.list(limit=100):
            yield batch

    async def file_text(self, file_id: str) -> str:
        content = await self.client.files.content(file_id)
        return content.text
