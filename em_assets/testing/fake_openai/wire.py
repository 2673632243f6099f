"""HTTP records and JSON helpers shared by every endpoint of the fake server.

An endpoint takes a :class:`Request` and returns a :class:`Response`, or a :class:`Fault` when
the connection should misbehave instead of answering (``faults.py`` carries it out).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import h11

SERVER_ERROR_MESSAGE = "The server had an error while processing your request."


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    chat_hash: str | None = None  # set on chat answers: counted only once fully written


@dataclass
class Fault:
    kind: str  # "reset" | "timeout" | "truncated"
    response: Response | None = None  # what "truncated" cuts short


def canonical(value: Any) -> str:
    """Compact JSON with sorted keys: the wire format, and the input of every hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def json_response(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, canonical(obj).encode(), headers or [])


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int, message: str, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> Response:
    return json_response(error_body(message, kind, code, param), status)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored object without its private ``_`` bookkeeping fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """OpenAI cursor pagination: ``after`` (an id) and ``limit``."""
    after = (request.query.get("after") or [None])[0]
    limit = int((request.query.get("limit") or ["20"])[0])
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def response_head(conn: h11.Connection, response: Response, content_length: int) -> bytes:
    """The status line and headers; content_length may differ from the body (a truncation fault)."""
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(content_length)),
        ("x-request-id", new_id("req_")),
        *response.headers,
    ]
    return conn.send(h11.Response(status_code=response.status, headers=headers))
