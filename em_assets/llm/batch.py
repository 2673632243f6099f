"""OpenAI Batch API mode: cache misses go out as one JSONL batch (per 50k requests) at half price.

Durability: every batch gets a record in the cache file *before* anything is sent (our own
``batch_key``, also sent as the batch's metadata), and each step is recorded as it completes:
preparing -> uploaded (input file id) -> submitted (batch id) -> done. A rerun after a crash
first resumes every unfinished record: it polls the recorded batch, or, when the crash fell
between creating the batch and recording its id, finds it by its metadata, so a batch is never
submitted twice. Results go into the cache as they are downloaded; failed and missing lines are
retried in a new batch, for a bounded number of rounds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from em_assets.llm.backends.openai_api import OpenAIBackend
from em_assets.llm.cache import BatchRecord, ResponseCache
from em_assets.llm.progress import Progress
from em_assets.llm.request import ChatRequest, Completion, InvalidResponseError, completion_from_openai
from em_assets.llm.retry import RetryPolicy, describe_error, retrying

log = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
METADATA_KEY = "em_batch_key"
# How far back to look for our batch by metadata, before the record's creation time.
_SEARCH_SLACK_S = 600


@dataclass(frozen=True)
class BatchSettings:
    poll_interval_s: float = 30.0
    max_wait_s: float = 26 * 3600.0  # a 24 h window plus finalizing
    max_rounds: int = 3  # the first batch plus retries of failed lines
    max_requests_per_batch: int = 50_000  # OpenAI's per-batch limit
    completion_window: str = "24h"


class BatchWaitTimeout(TimeoutError):
    """The batch is still running; its record stays open so a rerun resumes it."""


# (cache key, request body, completion, round, seconds since submit, batch id) -> None
OnResult = Callable[[str, Mapping[str, Any], Completion, int, float, str], None]


class BatchRunner:
    def __init__(
        self,
        backend: OpenAIBackend,
        cache: ResponseCache,
        settings: BatchSettings,
        *,
        retry: RetryPolicy,
        on_result: OnResult,
        progress: Progress | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.settings = settings
        self.retry = retry
        self.on_result = on_result
        self.progress = progress
        self.secrets = secrets
        self.endpoint = f"{backend.family}:{backend.host}"
        self.batches_created = 0

    async def _control(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """A control-plane call (poll, download, upload) with the engine's retry policy."""
        async for attempt in retrying(self.retry):
            with attempt:
                return await call()
        raise AssertionError("unreachable")

    def _note(self, message: str) -> None:
        log.info("%s", message)
        if self.progress is not None:
            self.progress.note(message)

    async def run(self, pending: Mapping[str, ChatRequest]) -> dict[str, str]:
        """Answer ``pending`` (cache key -> request) through batches; returns key -> error for
        the requests still unanswered after every round."""
        for record in self.cache.unfinished_batches(self.endpoint):
            await self._resume(record, pending)
        answered = self.cache.get_many(pending)
        remaining = [k for k in pending if k not in answered]
        errors: dict[str, str] = {}
        for round_number in range(1, self.settings.max_rounds + 1):
            if not remaining:
                break
            errors = {}
            size = self.settings.max_requests_per_batch
            for start in range(0, len(remaining), size):
                keys = remaining[start : start + size]
                bodies = {k: pending[k].openai_body() for k in keys}
                errors.update(await self._submit_and_wait(bodies, round_number))
            remaining = list(errors)
        return {k: errors.get(k, "not answered") for k in remaining}

    # --------------------------------------------------------------------------- submitting
    async def _submit_and_wait(self, bodies: dict[str, dict[str, Any]], round_number: int) -> dict[str, str]:
        batch_key = uuid.uuid4().hex
        self.cache.create_batch_record(batch_key, self.endpoint, list(bodies))
        lines = [
            json.dumps(
                {"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body}, ensure_ascii=False
            )
            for key, body in bodies.items()
        ]
        jsonl = ("\n".join(lines) + "\n").encode()
        file_id = await self._upload_once(jsonl, f"em-batch-{batch_key}.jsonl")
        self.cache.update_batch_record(batch_key, status="uploaded", input_file_id=file_id)
        record = self.cache.batch_record(batch_key)
        assert record is not None
        batch_id = await self._create_once(record, file_id)
        self._note(f"submitted batch {batch_id} with {len(bodies)} requests (round {round_number})")
        return await self._wait_and_ingest(record, batch_id, bodies, round_number)

    async def _upload_once(self, jsonl: bytes, filename: str) -> str:
        """Upload the input file; after a failed upload, look for it by its (unique) name before
        uploading again, so a lost answer does not leave a second copy at the provider."""
        async for attempt in retrying(self.retry):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    found = await self._control(lambda: self.backend.find_file(filename, len(jsonl), "batch"))
                    if found is not None:
                        return found
                return await self.backend.upload_batch_file(jsonl, filename)
        raise AssertionError("unreachable")

    async def _create_once(self, record: BatchRecord, file_id: str) -> str:
        """Create the batch; after a failed create, look for it by metadata before trying again
        (the request may have reached the server with only the answer lost)."""
        async for attempt in retrying(self.retry):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    found = await self._find_by_metadata(record)
                    if found is not None:
                        self.cache.update_batch_record(record.batch_key, status="submitted", batch_id=found)
                        return found
                batch = await self.backend.create_batch(
                    file_id, {METADATA_KEY: record.batch_key}, self.settings.completion_window
                )
                self.batches_created += 1
                self.cache.update_batch_record(record.batch_key, status="submitted", batch_id=str(batch.id))
                return str(batch.id)
        raise AssertionError("unreachable")

    async def _find_by_metadata(self, record: BatchRecord) -> str | None:
        async def search() -> str | None:
            async for batch in self.backend.iter_batches():
                if (batch.metadata or {}).get(METADATA_KEY) == record.batch_key:
                    return str(batch.id)
                if batch.created_at < record.created_at - _SEARCH_SLACK_S:
                    return None  # newest first: everything further is older than our record
            return None

        return await self._control(search)

    # ----------------------------------------------------------------------------- resuming
    async def _resume(self, record: BatchRecord, pending: Mapping[str, ChatRequest]) -> None:
        if record.input_file_id is None:
            # Crashed before the upload was recorded: nothing was submitted under this record.
            self.cache.update_batch_record(record.batch_key, status="abandoned")
            return
        batch_id = record.batch_id or await self._find_by_metadata(record)
        if batch_id is None:
            batch_id = await self._create_once(record, record.input_file_id)
        elif record.batch_id is None:
            self.cache.update_batch_record(record.batch_key, status="submitted", batch_id=batch_id)
        self._note(f"resuming batch {batch_id} ({len(record.members)} requests)")
        bodies = {k: pending[k].openai_body() for k in record.members if k in pending}
        if len(bodies) < len(record.members):  # a batch of another run: its bodies are in the input file
            text = await self._control(lambda: self.backend.file_text(record.input_file_id))
            for line in text.splitlines():
                if line.strip():
                    item = json.loads(line)
                    bodies.setdefault(item["custom_id"], item["body"])
        await self._wait_and_ingest(record, batch_id, bodies, round_number=1)

    # ------------------------------------------------------------------------------ waiting
    async def _wait_and_ingest(
        self, record: BatchRecord, batch_id: str, bodies: Mapping[str, Mapping[str, Any]], round_number: int
    ) -> dict[str, str]:
        deadline = time.monotonic() + self.settings.max_wait_s
        while True:
            batch = await self._control(lambda: self.backend.retrieve_batch(batch_id))
            counts = batch.request_counts
            self._note(
                f"batch {batch_id}: {batch.status}"
                + (f" ({counts.completed}/{counts.total} done, {counts.failed} failed)" if counts else "")
            )
            if batch.status in TERMINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                raise BatchWaitTimeout(f"batch {batch_id} still {batch.status} after {self.settings.max_wait_s:.0f}s")
            await asyncio.sleep(self.settings.poll_interval_s)
        elapsed = time.time() - record.created_at
        errors: dict[str, str] = {}
        answered: set[str] = set()
        if batch.output_file_id:
            text = await self._control(lambda: self.backend.file_text(batch.output_file_id))
            for key, problem, completion in _parse_output_lines(text):
                if key not in bodies:
                    continue
                if completion is None:
                    errors[key] = problem or "invalid result line"
                    continue
                self.on_result(key, bodies[key], completion, round_number, elapsed, batch_id)
                answered.add(key)
        if batch.error_file_id:
            text = await self._control(lambda: self.backend.file_text(batch.error_file_id))
            for key, problem, _ in _parse_output_lines(text):
                if key in bodies and key not in answered:
                    errors[key] = problem or "failed in batch"
        for key in record.members:
            if key not in answered and key not in errors:
                errors[key] = f"no result: batch {batch_id} ended {batch.status}"
        self.cache.update_batch_record(record.batch_key, status="done")
        return {k: f"batch line failed: {describe_error(RuntimeError(v), self.secrets)}" for k, v in errors.items()}


def _parse_output_lines(text: str) -> list[tuple[str, str | None, Completion | None]]:
    """Batch output/error JSONL -> (custom_id, problem, completion) per line."""
    parsed = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key = str(item["custom_id"])
        except (ValueError, KeyError, TypeError):
            continue  # a line we cannot attribute; its request ends up "no result" and is retried
        response = item.get("response") or {}
        status = response.get("status_code")
        if item.get("error") or status != 200:
            error = item.get("error") or (response.get("body") or {}).get("error") or {}
            message = error.get("message") if isinstance(error, Mapping) else str(error)
            parsed.append((key, f"HTTP {status}: {message}", None))
            continue
        try:
            parsed.append((key, None, completion_from_openai(response.get("body"))))
        except InvalidResponseError as exc:
            parsed.append((key, str(exc), None))
    return parsed
