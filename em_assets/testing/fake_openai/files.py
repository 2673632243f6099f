"""``/v1/files``: multipart upload, list, retrieve, content and delete, kept in memory.

Fine-tuning jobs and batches read their inputs from this store and write their result files to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY

from em_assets.testing.fake_openai.stats import Counters
from em_assets.testing.fake_openai.wire import Request, Response, error_response, json_response, new_id


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a multipart/form-data body: name -> (filename, raw bytes)."""
    message = BytesParser(policy=HTTP_POLICY).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class FileStore:
    def __init__(self, counters: Counters) -> None:
        self.counters = counters  # its lock guards listing from the test's thread
        self.files: dict[str, StoredFile] = {}

    def store(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, content, int(time.time()))
        self.files[stored.id] = stored
        return stored

    def uploaded(self, purpose: str | None = None) -> list[dict]:
        """Every file as the API shows it, optionally of one purpose (read from the test's thread)."""
        with self.counters.lock:
            return [f.as_json() for f in self.files.values() if purpose is None or f.purpose == purpose]

    async def create(self, request: Request) -> Response:
        fields = parse_multipart(request.headers.get("content-type", ""), request.body)
        if "file" not in fields or "purpose" not in fields:
            return error_response(400, "multipart fields 'file' and 'purpose' are required")
        filename, content = fields["file"]
        stored = self.store(filename or "upload.jsonl", fields["purpose"][1].decode(), content)
        return json_response(stored.as_json())

    async def list_all(self, request: Request) -> Response:
        purpose = (request.query.get("purpose") or [None])[0]
        data = [f.as_json() for f in self.files.values() if purpose is None or f.purpose == purpose]
        return json_response({"object": "list", "data": data, "has_more": False})

    @staticmethod
    def _missing(id: str) -> Response:
        return error_response(404, f"No such File object: {id}", param="id")

    async def retrieve(self, request: Request, id: str) -> Response:
        return json_response(self.files[id].as_json()) if id in self.files else self._missing(id)

    async def delete(self, request: Request, id: str) -> Response:
        if self.files.pop(id, None) is None:
            return self._missing(id)
        return json_response({"id": id, "object": "file", "deleted": True})

    async def content(self, request: Request, id: str) -> Response:
        if id not in self.files:
            return self._missing(id)
        return Response(200, self.files[id].content, content_type="application/octet-stream")
