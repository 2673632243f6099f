"""The two shapes of backend the engine drives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from em_assets.llm.request import ChatRequest, Completion


@dataclass(frozen=True)
class BackendReply:
    completion: Completion
    headers: Mapping[str, str] = field(default_factory=dict)  # for rate-limit feedback


@runtime_checkable
class ChatBackend(Protocol):
    """A remote endpoint called one request at a time, many concurrently."""

    family: str  # part of the cache key: "openai", "openai_compatible"
    host: str | None  # base_url host for the ledger (never credentials)

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def complete(self, request: ChatRequest) -> BackendReply: ...

    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any error text."""
        ...


@runtime_checkable
class LocalBatchBackend(Protocol):
    """An in-process model that answers a list of requests in padded batches."""

    family: str
    host: str | None
    batch_size: int

    def complete_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]: ...
