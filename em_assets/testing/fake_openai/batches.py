"""``/v1/batches``: create, list, retrieve and cancel chat-completion batches.

A batch completes on its ``batch_polls_to_complete``-th retrieve: every line of its input file
runs through the chat handler at once, and the answers go to an output file (counted in the
server's chat answers like synchronous ones). ``batch_line_error_rate`` turns lines into 500s.
"""

from __future__ import annotations

import json
import time
from typing import Any

from em_assets.testing.fake_openai.chat import chat_request_hash, complete_chat
from em_assets.testing.fake_openai.config import ServerContext
from em_assets.testing.fake_openai.files import FileStore
from em_assets.testing.fake_openai.wire import (
    SERVER_ERROR_MESSAGE,
    Request,
    Response,
    canonical,
    error_body,
    error_response,
    json_response,
    new_id,
    page,
    public,
)

_ACTIVE = ("validating", "in_progress")


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(canonical(r) + "\n" for r in rows).encode()


def _missing(id: str) -> Response:
    return error_response(404, f"No such batch: {id}", param="id")


class Batches:
    def __init__(self, context: ServerContext, files: FileStore) -> None:
        self.context = context
        self.files = files
        self.batches: dict[str, dict[str, Any]] = {}
        self.failed_custom_ids: set[str] = set()  # custom_ids that already got their one error

    def created(self) -> list[dict[str, Any]]:
        """Every batch, as the API shows it, oldest first (read from the test's thread)."""
        with self.context.counters.lock:
            return [public(batch) for batch in self.batches.values()]

    async def create(self, request: Request) -> Response:
        body = request.json()
        input_file_id = body.get("input_file_id")
        if input_file_id not in self.files.files:
            return error_response(400, f"invalid input_file_id: {input_file_id}", param="input_file_id")
        if body.get("endpoint") != "/v1/chat/completions":
            return error_response(400, "the fake server batches /v1/chat/completions only", param="endpoint")
        now = int(time.time())
        batch = {
            "id": new_id("batch_"),
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
            "_polls": 0,
        }
        self.batches[batch["id"]] = batch
        return json_response(public(batch))

    def _line_fails(self, custom_id: str) -> bool:
        config = self.context.config
        fail = self.context.rng.random() < config.batch_line_error_rate
        if fail and config.batch_line_errors_transient:
            fail = custom_id not in self.failed_custom_ids
        return fail

    def _process(self, batch: dict[str, Any]) -> None:
        content = self.files.files[batch["input_file_id"]].content.decode()
        lines = [line for line in content.splitlines() if line.strip()]
        outputs, errors, seen = [], [], set()
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
                custom_id, body = item["custom_id"], item["body"]
                if custom_id in seen or item.get("url") != batch["endpoint"]:
                    raise ValueError("duplicate custom_id or wrong url")
                seen.add(custom_id)
            except (ValueError, KeyError, TypeError) as exc:
                batch["status"], batch["failed_at"] = "failed", int(time.time())
                error = {"code": "invalid_request", "message": str(exc), "param": None, "line": number}
                batch["errors"] = {"object": "list", "data": [error]}
                return
            request_id = new_id("req_")
            if self._line_fails(custom_id):
                self.failed_custom_ids.add(custom_id)
                error = error_body(SERVER_ERROR_MESSAGE, "server_error")
                response = {"status_code": 500, "request_id": request_id, "body": error}
                errors.append({"id": new_id("batch_req_"), "custom_id": custom_id, "response": response, "error": None})
                continue
            completion = complete_chat(body, self.context.config.chat_handler)
            response = {"status_code": 200, "request_id": request_id, "body": completion}
            outputs.append({"id": new_id("batch_req_"), "custom_id": custom_id, "response": response, "error": None})
            self.context.counters.count_answer(chat_request_hash(body))

        if outputs:
            batch["output_file_id"] = self._store_results(batch, "output", outputs)
        if errors:
            batch["error_file_id"] = self._store_results(batch, "error", errors)
        now = int(time.time())
        batch.update(status="completed", finalizing_at=now, completed_at=now)
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}

    def _store_results(self, batch: dict[str, Any], kind: str, rows: list[dict]) -> str:
        return self.files.store(f"{batch['id']}_{kind}.jsonl", "batch_output", _jsonl(rows)).id

    async def retrieve(self, request: Request, id: str) -> Response:
        if id not in self.batches:
            return _missing(id)
        batch = self.batches[id]
        if batch["status"] in _ACTIVE:
            batch["_polls"] += 1
            if batch["_polls"] >= self.context.config.batch_polls_to_complete:
                self._process(batch)
            else:
                batch["status"], batch["in_progress_at"] = "in_progress", batch["in_progress_at"] or int(time.time())
        return json_response(public(batch))

    async def list_all(self, request: Request) -> Response:
        batches = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
        return json_response(page([public(b) for b in batches], request))

    async def cancel(self, request: Request, id: str) -> Response:
        if id not in self.batches:
            return _missing(id)
        batch = self.batches[id]
        if batch["status"] in _ACTIVE:
            now = int(time.time())
            batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
        return json_response(public(batch))
