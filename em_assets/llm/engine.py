"""The LLM call engine: every sampling and judging call of the pipeline goes through here.

For a list of requests it (1) answers what the cache already holds without touching the
network, (2) sends the rest through one of three paths: concurrent API calls (rate gate, then an
in-flight slot, retries with backoff outside the slot), the OpenAI Batch API, or a local model in
padded batches, (3) stores each answer in the cache the moment it arrives, and (4) records one
ledger row per call. Identical requests within a run are sent once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from em_assets.llm.backends.base import ChatBackend, LocalBatchBackend
from em_assets.llm.backends.openai_api import OpenAIBackend
from em_assets.llm.batch import BatchRunner, BatchSettings
from em_assets.llm.cache import ResponseCache
from em_assets.llm.ledger import CallSummary, CostLedger, ledger_row
from em_assets.llm.prices import PriceTable
from em_assets.llm.progress import Progress, ProgressEvent
from em_assets.llm.rate_limiter import LimitsConfig, RateGate, parse_ratelimit_headers
from em_assets.llm.request import ChatRequest, ChatResult, Completion, cache_key, estimate_prompt_tokens
from em_assets.llm.retry import (
    LLMCallsFailed,
    LLMRequestError,
    RetryPolicy,
    describe_error,
    describe_request,
    outcome_unknown,
    response_headers,
    retry_after_of,
    retrying,
    status_code,
)
from em_assets.redaction import provider_errors_redacted

if TYPE_CHECKING:
    from em_assets.resources.warehouse import DuckDBWarehouse

log = logging.getLogger(__name__)
T = TypeVar("T")

# Completion tokens assumed for the tokens/min budget when a request sets no max_tokens.
_ASSUMED_COMPLETION_TOKENS = 256


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when this thread already runs an
    event loop (an async Dagster op, a notebook): then it runs on a fresh loop in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class LLMEngine:
    """Concurrent, rate-limited, cached, resumable chat completions with a cost ledger.

    ``backend`` is an :class:`OpenAIBackend` (OpenAI or any compatible ``base_url``) or an
    :class:`~em_assets.llm.backends.local_hf.LocalHFBackend`. ``batch`` switches API calls to
    the Batch API. ``warehouse`` receives ledger rows in ``llm_calls``; ``tags`` (asset,
    partition_key, run_id, ...) label every row and every error.
    """

    def __init__(
        self,
        backend: ChatBackend | LocalBatchBackend,
        *,
        cache: ResponseCache | str | Path | None = None,
        warehouse: DuckDBWarehouse | None = None,
        limits: LimitsConfig | None = None,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        tags: Mapping[str, Any] | None = None,
        cache_namespace: str = "",
        batch: BatchSettings | None = None,
        progress_bar: bool = False,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        progress_interval_s: float = 10.0,
        ledger_flush_rows: int = 1000,
        ledger_flush_interval_s: float = 30.0,
    ) -> None:
        self.backend = backend
        self._owns_cache = not isinstance(cache, ResponseCache)
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
        self.limits = limits or LimitsConfig()
        self.retry = retry or RetryPolicy()
        self.prices = prices or PriceTable.load()
        self.tags = dict(tags or {})
        self.cache_namespace = cache_namespace
        self.batch = batch
        if batch is not None and not isinstance(backend, OpenAIBackend):
            raise ValueError("Batch API mode needs an OpenAIBackend")
        self.progress_bar = progress_bar
        self.on_progress = on_progress
        self.progress_interval_s = progress_interval_s
        self.ledger = CostLedger(
            warehouse, self.cache, flush_rows=ledger_flush_rows, flush_interval_s=ledger_flush_interval_s
        )
        self._gates: dict[tuple[str, str | None, str], RateGate] = {}
        self._flush_task: asyncio.Task | None = None
        self.last_batch_runner: BatchRunner | None = None

    # ----------------------------------------------------------------------------- public
    @property
    def endpoint_family(self) -> str:
        return self.backend.family

    def key_of(self, request: ChatRequest) -> str:
        return cache_key(request, self.backend.family, self.cache_namespace)

    def summary(self) -> CallSummary:
        """Totals over every call this engine answered (for Dagster output metadata)."""
        return self.ledger.summary

    def complete_many(
        self, requests: Sequence[ChatRequest], *, tags: Mapping[str, Any] | None = None, raise_on_error: bool = True
    ) -> list[ChatResult]:
        return run_sync(self.acomplete_many(requests, tags=tags, raise_on_error=raise_on_error))

    def complete(self, request: ChatRequest, *, tags: Mapping[str, Any] | None = None) -> ChatResult:
        return self.complete_many([request], tags=tags)[0]

    def flush(self) -> int:
        """Write waiting ledger rows to DuckDB now."""
        return self.ledger.flush()

    def close(self) -> None:
        """Flush the ledger, close the cache when the engine opened it, and release a local
        backend's resident model; idempotent."""
        self.ledger.flush()
        if self._owns_cache:
            self.cache.close()
        release = getattr(self.backend, "release", None)
        if callable(release):
            release()

    def __enter__(self) -> LLMEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def acomplete_many(
        self, requests: Sequence[ChatRequest], *, tags: Mapping[str, Any] | None = None, raise_on_error: bool = True
    ) -> list[ChatResult]:
        """Results in request order. With ``raise_on_error`` a run with failures raises
        :class:`LLMCallsFailed` at the end, after every other result has been cached."""
        requests = list(requests)
        run_tags = {**self.tags, **(tags or {})}
        keys = [self.key_of(r) for r in requests]
        first_of: dict[str, int] = {}
        for index, key in enumerate(keys):
            first_of.setdefault(key, index)
        outcomes: dict[str, ChatResult] = {}
        progress = Progress(
            len(first_of), bar=self.progress_bar, callback=self.on_progress, interval_s=self.progress_interval_s
        )
        try:
            for key, completion in self.cache.get_many(first_of).items():
                request = requests[first_of[key]]
                outcomes[key] = ChatResult(request, key, completion, cache_hit=True, attempts=0, latency_s=0.0)
                self._record(
                    key, request, completion, run_tags, cache_hit=True, attempts=0, latency_s=0.0, mode="cache"
                )
            progress.advance(len(outcomes), cache_hit=True)
            misses = {k: requests[i] for k, i in first_of.items() if k not in outcomes}
            # Per-call errors are redacted where they are recorded; this covers what escapes
            # the calls (a Batch API control call, opening the client).
            with provider_errors_redacted(LLMRequestError, self._secrets()):
                if misses:
                    if isinstance(self.backend, LocalBatchBackend):
                        await self._run_local(misses, run_tags, outcomes, progress)
                    elif self.batch is not None:
                        await self._run_batch(misses, run_tags, outcomes, progress)
                    else:
                        await self._run_concurrent(misses, run_tags, outcomes, progress)
        finally:
            progress.close()
            if self._flush_task is not None:
                await self._flush_task
                self._flush_task = None
            await asyncio.to_thread(self.ledger.flush)
        results = [
            outcomes[key] if i == first_of[key] else dataclasses.replace(outcomes[key], request=requests[i])
            for i, key in enumerate(keys)
        ]
        failures = [outcomes[k].error or "" for k in first_of if not outcomes[k].ok]
        if failures and raise_on_error:
            raise LLMCallsFailed(failures, len(first_of))
        return results

    # --------------------------------------------------------------------------- recording
    def _record(
        self,
        key: str,
        request: ChatRequest,
        completion: Completion | None,
        tags: Mapping[str, Any],
        *,
        cache_hit: bool,
        attempts: int,
        latency_s: float | None,
        mode: str,
        error: str | None = None,
        body: Mapping[str, Any] | None = None,
        only_if_new: bool = False,
        unconfirmed_attempts: int = 0,
    ) -> None:
        """One ledger row; for a fresh completion also the cache entry, in one transaction.

        ``unconfirmed_attempts``: tries that timed out or lost their answer. The provider may
        have done (and billed) that work, so their estimated cost is added: ``cost_usd`` is an
        upper bound, ``unconfirmed_cost_usd`` the estimated part."""
        tokens_in = completion.tokens_in if completion else 0
        tokens_out = completion.tokens_out if completion else 0
        cost: float | None = 0.0
        if completion is not None and not cache_hit:
            cost = self.prices.estimate(
                request.model,
                tokens_in,
                tokens_out,
                endpoint_family=self.backend.family,
                batch=mode == "batch",
                cached_tokens_in=completion.cached_tokens_in,
            )
        unconfirmed_cost: float | None = 0.0
        if unconfirmed_attempts:
            # Tokens of a lost answer are unknown: the prompt estimated, the completion at its cap.
            per_attempt = self.prices.estimate(
                request.model,
                estimate_prompt_tokens(request.messages),
                request.max_tokens or _ASSUMED_COMPLETION_TOKENS,
                endpoint_family=self.backend.family,
            )
            unconfirmed_cost = None if per_attempt is None else per_attempt * unconfirmed_attempts
            cost = None if cost is None or unconfirmed_cost is None else cost + unconfirmed_cost
        row = ledger_row(
            cache_key=key,
            endpoint_family=self.backend.family,
            base_url_host=self.backend.host,
            model=request.model,
            sample_index=request.sample_index,
            mode=mode,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            cache_hit=cache_hit,
            latency_s=latency_s,
            attempts=attempts,
            error=error,
            tags={**tags, **request.tags},
            unconfirmed_attempts=unconfirmed_attempts,
            unconfirmed_cost_usd=unconfirmed_cost,
        )
        if completion is not None and not cache_hit:
            target = self.ledger.spool_target
            self.cache.put(
                key,
                completion,
                request=body if body is not None else request.openai_body(),
                endpoint_family=self.backend.family,
                model=request.model,
                ledger_row=row,
                ledger_target=target,
                ledger_only_if_new=only_if_new,
            )
            self.ledger.note(row, spooled=target is not None)
        else:
            self.ledger.note(row, spooled=False)
        if self._flush_task is None and self.ledger.flush_due():
            self._flush_task = asyncio.get_running_loop().create_task(self._background_flush())

    async def _background_flush(self) -> None:
        try:
            await asyncio.to_thread(self.ledger.flush)
        finally:
            self._flush_task = None

    def _secrets(self) -> tuple[str, ...]:
        secrets = getattr(self.backend, "secrets", None)
        return secrets() if callable(secrets) else ()

    def _failure(
        self,
        key: str,
        request: ChatRequest,
        tags: Mapping[str, Any],
        attempts: int,
        exc: BaseException,
        mode: str,
        unconfirmed_attempts: int = 0,
    ) -> ChatResult:
        label = describe_request(key, request.model, {**tags, **request.tags})
        error = f"{label} failed after {attempts} attempt(s): {describe_error(exc, self._secrets())}"
        log.warning("%s", error)
        self._record(
            key,
            request,
            None,
            tags,
            cache_hit=False,
            attempts=attempts,
            latency_s=None,
            mode=mode,
            error=error,
            unconfirmed_attempts=unconfirmed_attempts,
        )
        return ChatResult(request, key, None, cache_hit=False, attempts=attempts, latency_s=None, error=error)

    # -------------------------------------------------------------------------- API calls
    def _gate(self, model: str) -> RateGate:
        index = (self.backend.family, self.backend.host, model)
        if index not in self._gates:
            self._gates[index] = RateGate(self.limits)
        return self._gates[index]

    async def _run_concurrent(
        self,
        misses: dict[str, ChatRequest],
        tags: Mapping[str, Any],
        outcomes: dict[str, ChatResult],
        progress: Progress,
    ) -> None:
        backend = self.backend
        assert isinstance(backend, ChatBackend)
        queue = deque(misses.items())
        slots = asyncio.Semaphore(self.limits.max_in_flight)

        async def worker() -> None:
            while queue:
                key, request = queue.popleft()
                outcome = await self._call(backend, key, request, tags, slots)
                outcomes[key] = outcome
                progress.advance(failed=not outcome.ok)

        # Workers sleeping in a backoff hold no slot, so keep more workers than slots.
        n_workers = min(len(misses), max(4 * self.limits.max_in_flight, 64))
        await backend.open()
        try:
            await asyncio.gather(*(worker() for _ in range(n_workers)))
        finally:
            await backend.close()

    async def _call(
        self, backend: ChatBackend, key: str, request: ChatRequest, tags: Mapping[str, Any], slots: asyncio.Semaphore
    ) -> ChatResult:
        gate = self._gate(request.model)
        budget = estimate_prompt_tokens(request.messages) + (request.max_tokens or _ASSUMED_COMPLETION_TOKENS)
        attempts = unconfirmed = 0
        try:
            async for attempt in retrying(self.retry):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    await gate.acquire(budget)  # waits here hold no slot
                    async with slots:
                        started = time.monotonic()
                        try:
                            reply = await backend.complete(request)
                        except BaseException as exc:
                            unconfirmed += outcome_unknown(exc)
                            self._feedback(gate, exc)
                            log.debug("%s attempt %d: %s", key[:16], attempts, describe_error(exc, self._secrets()))
                            raise
                        latency = time.monotonic() - started
                    gate.settle(parse_ratelimit_headers(reply.headers))
        except Exception as exc:
            return self._failure(key, request, tags, attempts, exc, "sync", unconfirmed)
        self._record(
            key,
            request,
            reply.completion,
            tags,
            cache_hit=False,
            attempts=attempts,
            latency_s=latency,
            mode="sync",
            unconfirmed_attempts=unconfirmed,
        )
        return ChatResult(request, key, reply.completion, cache_hit=False, attempts=attempts, latency_s=latency)

    @staticmethod
    def _feedback(gate: RateGate, exc: BaseException) -> None:
        """Let the whole (endpoint, model) back off on a 429, not just this request."""
        headers = response_headers(exc)
        gate.settle(parse_ratelimit_headers(headers) if headers is not None else None)
        if status_code(exc) == 429:
            gate.on_rate_limited(retry_after_of(exc))

    # ---------------------------------------------------------------------------- Batch API
    async def _run_batch(
        self,
        misses: dict[str, ChatRequest],
        tags: Mapping[str, Any],
        outcomes: dict[str, ChatResult],
        progress: Progress,
    ) -> None:
        backend = self.backend
        assert isinstance(backend, OpenAIBackend) and self.batch is not None

        def on_result(
            key: str, body: Mapping[str, Any], completion: Completion, round_number: int, elapsed: float, batch_id: str
        ) -> None:
            request = misses.get(key) or _request_from_body(body)
            self._record(
                key, request, completion, {**tags, "batch_id": batch_id}, cache_hit=False, attempts=round_number,
                latency_s=elapsed, mode="batch", body=body, only_if_new=True,
            )  # fmt: skip
            if key in misses:
                outcomes[key] = ChatResult(
                    request, key, completion, cache_hit=False, attempts=round_number, latency_s=elapsed
                )
                progress.advance()

        runner = BatchRunner(
            backend,
            self.cache,
            self.batch,
            retry=self.retry,
            on_result=on_result,
            progress=progress,
            secrets=self._secrets(),
        )
        self.last_batch_runner = runner
        await backend.open()
        try:
            errors = await runner.run(misses)
        finally:
            await backend.close()
        for key, message in errors.items():
            request = misses[key]
            error = (
                f"{describe_request(key, request.model, {**tags, **request.tags})} failed in the Batch API: {message}"
            )
            self._record(
                key,
                request,
                None,
                tags,
                cache_hit=False,
                attempts=self.batch.max_rounds,
                latency_s=None,
                mode="batch",
                error=error,
            )
            outcomes[key] = ChatResult(
                request, key, None, cache_hit=False, attempts=self.batch.max_rounds, latency_s=None, error=error
            )
            progress.advance(failed=True)

    # -------------------------------------------------------------------------- local model
    async def _run_local(
        self,
        misses: dict[str, ChatRequest],
        tags: Mapping[str, Any],
        outcomes: dict[str, ChatResult],
        progress: Progress,
    ) -> None:
        backend = self.backend
        assert isinstance(backend, LocalBatchBackend)
        # Order by generation parameters so each slice is one padded batch.
        items = sorted(misses.items(), key=lambda kv: repr(_generation_signature(kv[1])))
        for start in range(0, len(items), backend.batch_size):
            chunk = items[start : start + backend.batch_size]
            started = time.monotonic()
            try:
                completions = await asyncio.to_thread(backend.complete_batch, [r for _, r in chunk])
            except Exception as exc:
                for key, request in chunk:
                    outcomes[key] = self._failure(key, request, tags, 1, exc, "local")
                    progress.advance(failed=True)
                continue
            latency = (time.monotonic() - started) / len(chunk)
            for (key, request), completion in zip(chunk, completions, strict=True):
                self._record(
                    key, request, completion, tags, cache_hit=False, attempts=1, latency_s=latency, mode="local"
                )
                outcomes[key] = ChatResult(request, key, completion, cache_hit=False, attempts=1, latency_s=latency)
                progress.advance()


def _generation_signature(request: ChatRequest) -> tuple:
    return (
        request.model,
        request.max_tokens,
        request.temperature or 0.0,
        request.top_p,
        request.logprobs,
        request.top_logprobs,
    )


def _request_from_body(body: Mapping[str, Any]) -> ChatRequest:
    """A request rebuilt from a Batch API line of another run, for its ledger row."""
    return ChatRequest(
        model=str(body.get("model", "unknown")),
        messages=tuple(body.get("messages") or ({"role": "user", "content": ""},)),
    )
