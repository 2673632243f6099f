"""A local, deterministic stand-in for the OpenAI HTTP API, for tests and benchmarks.

It is a real HTTP/1.1 server (``h11`` over asyncio, in a background thread) bound to 127.0.0.1
on a free port, so the real ``openai`` client talks to it unchanged::

    with FakeOpenAIServer(latency_s=0.05, rate_limit_rps=100, fault_rate=0.2) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        ...
        server.stats().duplicate_answers  # -> {} when no request was answered twice

A hand-rolled server rather than starlette/uvicorn because fault injection needs to act below
ASGI: close a socket with RST and no response, hang without answering, or send a body cut
short, none of which an ASGI app can express.

Endpoints: chat completions (``n``, ``logprobs``/``top_logprobs``, usage, ``x-ratelimit-*``
headers), files (multipart upload, list, retrieve, content, delete), fine-tuning jobs (create,
list, retrieve, events, checkpoints, cancel; state advances on each retrieve), batches (create, list,
retrieve, cancel; the input JSONL runs through the chat handler), models, and ``GET
/_fake/stats`` (the counters as JSON, for a server run as a separate process).

Knobs live in :class:`FakeServerConfig` and may be changed while the server runs
(``server.config.fault_rate = 0``). Latency, the rate limit and fault injection apply to chat
completions only; the other endpoints are control-plane calls answered at once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

FAULT_KINDS = ("500", "timeout", "reset", "truncated")
# Also for chat, opt in through fault_kinds: the answer is computed (paid at a real provider),
# then held past the client's timeout and dropped.
SLOW_ANSWER = "slow_answer"
# Faults for control-plane endpoints (FakeServerConfig.endpoint_faults). lost_reply: the request
# takes effect, then the connection is reset without an answer (the reply is lost on the way
# back); slow_reply: it takes effect, then the answer is held past the client's timeout;
# reset / 500 / 401 / 429: refused before anything is done (401 echoes the masked key, as OpenAI
# does; 429 asks to retry after 50 ms).
ENDPOINT_FAULT_KINDS = ("lost_reply", "slow_reply", "reset", "500", "401", "429")
DEFAULT_MODELS = (
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-3.5-turbo",
)
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


@dataclass
class FakeServerConfig:
    latency_s: float = 0.0  # added to every chat completion
    latency_jitter_s: float = 0.0  # uniform +- around latency_s
    rate_limit_rps: float | None = None  # admitted chat requests per rate_window_s, else 429
    rate_window_s: float = 1.0
    fault_rate: float = 0.0  # probability a chat request gets a fault instead of an answer
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0  # seeds fault injection, latency jitter and batch line errors
    hang_s: float = 5.0  # a "timeout" fault hangs this long, then closes without answering
    require_api_key: str | None = None  # when set, any other bearer token gets a 401
    tokens_per_minute: int = 30_000_000  # reported in x-ratelimit-*-tokens (not enforced)
    send_ratelimit_headers: bool = True  # False: the client must discover the limit by 429s
    chat_handler: ChatHandler | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    fine_tune_polls_per_stage: int = 1  # retrieves spent in validating_files, then in running
    fine_tune_fail_with: str | None = None  # job ends "failed" with this error message
    reject_training_file: str | None = None  # create answers 400 with this message
    batch_polls_to_complete: int = 1  # retrieves until a batch is processed and completed
    batch_line_error_rate: float = 0.0  # share of batch lines answered with an error...
    batch_line_errors_transient: bool = True  # ...only the first time a custom_id is seen
    # "POST /v1/fine_tuning/jobs" (method and route template) -> faults for its next requests,
    # one consumed per request, in order (ENDPOINT_FAULT_KINDS).
    endpoint_faults: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class FakeServerStats:
    requests_by_endpoint: dict[str, int]  # "POST /v1/chat/completions" -> count (all outcomes)
    chat_answers: dict[str, int]  # chat_request_hash(body) -> successful answers (sync + batch)
    faults: dict[str, int]  # fault kind -> injected count
    rate_limited: int  # 429s sent
    unanswered_paid: int = 0  # chat answers computed, then dropped by a slow_answer fault

    def requests(self, endpoint: str) -> int:
        return self.requests_by_endpoint.get(endpoint, 0)

    @property
    def chat_requests(self) -> int:
        return self.requests("POST /v1/chat/completions")

    @property
    def total_requests(self) -> int:
        return sum(self.requests_by_endpoint.values())

    @property
    def duplicate_answers(self) -> dict[str, int]:
        return {h: n for h, n in self.chat_answers.items() if n > 1}


def chat_request_hash(body: Mapping[str, Any]) -> str:
    """Identity of a chat request for the answer counters: sha256 of its canonical JSON."""
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256("\x1f".join(_canonical(p) for p in parts).encode()).digest()


def tokenize(text: str) -> list[str]:
    """The fake server's tokenizer: words with their leading whitespace."""
    return _TOKEN_PATTERN.findall(text)


def default_chat_handler(body: dict[str, Any], index: int) -> FakeChoice:
    """A deterministic answer derived from the request: one number for one-token calls
    (judge-style), else 5-24 words."""
    digest = _digest(body.get("model"), body.get("messages"), body.get("seed"), index)
    if _max_tokens(body) == 1:
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


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return int(value) if value is not None else None


def _prompt_tokens(messages: Any) -> int:
    total = 3
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):  # content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += 4 + len(tokenize(str(content or "")))
    return total


def _format_duration(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: "20ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


def _error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class _Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    chat_hash: str | None = None  # set on chat answers: counted only once fully written


@dataclass
class _Fault:
    kind: str  # "reset" | "timeout" | "truncated"
    response: _Response | None = None  # what "truncated" cuts short


def _json_response(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> _Response:
    return _Response(status, _canonical(obj).encode(), headers or [])


@dataclass
class _File:
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


class FakeOpenAIServer:
    """The fake API server; a context manager that starts and stops it.

    ``FakeOpenAIServer(latency_s=0.05, rate_limit_rps=100)`` sets knobs directly, or pass a
    :class:`FakeServerConfig`. ``base_url`` ends in ``/v1`` as the openai client expects.
    """

    def __init__(
        self, config: FakeServerConfig | None = None, *, host: str = "127.0.0.1", port: int = 0, **knobs: Any
    ) -> None:
        if config is not None and knobs:
            raise TypeError("pass either a FakeServerConfig or knobs, not both")
        self.config = config or FakeServerConfig(**knobs)
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._lock = threading.Lock()  # guards counters against the reading thread
        self._requests_by_endpoint: Counter[str] = Counter()
        self._chat_answers: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._rate_limited = 0
        self._unanswered_paid = 0
        self._admitted: deque[float] = deque()
        self._rng = random.Random(self.config.seed)
        self._files: dict[str, _File] = {}
        self._jobs: dict[str, dict[str, Any]] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._failed_batch_ids: set[str] = set()  # custom_ids that already got their one error
        self._fine_tuned_models: list[str] = []
        self._routes = self._build_routes()

    # ----------------------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve_connection, self.host, self._requested_port, backlog=1024)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # report bind errors to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ counters
    def stats(self) -> FakeServerStats:
        with self._lock:
            return FakeServerStats(
                requests_by_endpoint=dict(self._requests_by_endpoint),
                chat_answers=dict(self._chat_answers),
                faults=dict(self._faults),
                rate_limited=self._rate_limited,
                unanswered_paid=self._unanswered_paid,
            )

    def fine_tuning_jobs(self) -> list[dict[str, Any]]:
        """Every job created at this server, as the API shows it (oldest first)."""
        with self._lock:
            return [_public(job) for job in self._jobs.values()]

    def uploaded_files(self, purpose: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_json() for f in self._files.values() if purpose is None or f.purpose == purpose]

    def batches(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_public(batch) for batch in self._batches.values()]

    def reset_counters(self) -> None:
        with self._lock:
            self._requests_by_endpoint.clear()
            self._chat_answers.clear()
            self._faults.clear()
            self._rate_limited = 0
            self._unanswered_paid = 0

    # ---------------------------------------------------------------------------- connection
    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    return
                outcome = await self._dispatch(request)
                if isinstance(outcome, _Fault):
                    await self._apply_fault(outcome, conn, writer)
                    return
                await self._write(conn, writer, outcome)
                if outcome.chat_hash is not None:
                    with self._lock:
                        self._chat_answers[outcome.chat_hash] += 1
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(task)
            writer.close()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> _Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                parts = urlsplit(head.target.decode("latin-1"))
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
                return _Request(head.method.decode(), parts.path, parse_qs(parts.query), headers, bytes(body))

    @staticmethod
    def _head(conn: h11.Connection, response: _Response, content_length: int) -> bytes:
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(content_length)),
            ("x-request-id", _new_id("req_")),
            *response.headers,
        ]
        return conn.send(h11.Response(status_code=response.status, headers=headers))

    async def _write(self, conn: h11.Connection, writer: asyncio.StreamWriter, response: _Response) -> None:
        data = self._head(conn, response, len(response.body))
        data += conn.send(h11.Data(data=response.body)) + conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()

    async def _apply_fault(self, fault: _Fault, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
        if fault.kind == "timeout":
            await asyncio.sleep(self.config.hang_s)
        elif fault.kind == "truncated" and fault.response is not None:
            body = fault.response.body[: max(1, len(fault.response.body) // 2)]
            # Say we close, so the client does not reuse the connection for its next request.
            fault.response.headers.append(("connection", "close"))
            if self._rng.random() < 0.5:
                # Framing intact, JSON cut: a "complete" 200 whose body does not parse.
                writer.write(self._head(conn, fault.response, len(body)) + body)
            else:
                # Promised length never arrives: the client sees the connection end mid-body.
                writer.write(self._head(conn, fault.response, len(fault.response.body)) + body)
            await writer.drain()
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:  # SO_LINGER 0: close with RST, as a dropped connection does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    # ------------------------------------------------------------------------------- routing
    def _build_routes(self) -> list[tuple[str, str, re.Pattern[str], Callable[..., Any]]]:
        table = [
            ("POST", "/v1/chat/completions", self._chat_completions),
            ("GET", "/v1/models", self._list_models),
            ("GET", "/v1/models/{id}", self._get_model),
            ("POST", "/v1/files", self._create_file),
            ("GET", "/v1/files", self._list_files),
            ("GET", "/v1/files/{id}", self._get_file),
            ("DELETE", "/v1/files/{id}", self._delete_file),
            ("GET", "/v1/files/{id}/content", self._file_content),
            ("POST", "/v1/fine_tuning/jobs", self._create_job),
            ("GET", "/v1/fine_tuning/jobs", self._list_jobs),
            ("GET", "/v1/fine_tuning/jobs/{id}", self._get_job),
            ("GET", "/v1/fine_tuning/jobs/{id}/events", self._job_events),
            ("POST", "/v1/fine_tuning/jobs/{id}/cancel", self._cancel_job),
            ("GET", "/v1/fine_tuning/jobs/{id}/checkpoints", self._job_checkpoints),
            ("POST", "/v1/batches", self._create_batch),
            ("GET", "/v1/batches", self._list_batches),
            ("GET", "/v1/batches/{id}", self._get_batch),
            ("POST", "/v1/batches/{id}/cancel", self._cancel_batch),
            ("GET", "/_fake/stats", self._stats_endpoint),
        ]
        routes = []
        for method, template, handler in table:
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$")
            routes.append((method, template, pattern, handler))
        return routes

    async def _dispatch(self, request: _Request) -> _Response | _Fault:
        for method, template, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                with self._lock:
                    self._requests_by_endpoint[f"{method} {template}"] += 1
                if template != "/_fake/stats":
                    denied = self._check_key(request)
                    if denied is not None:
                        return denied
                fault = self._next_endpoint_fault(f"{method} {template}")
                if fault in ("reset", "500", "401", "429"):
                    return self._refusal(fault, request)
                try:
                    response = await handler(request, **match.groupdict())
                except (ValueError, KeyError, TypeError) as exc:
                    return _json_response(_error_body(f"invalid request: {exc}", "invalid_request_error"), 400)
                except Exception as exc:  # a test's handler raised: answer like a provider bug
                    return _json_response(_error_body(f"fake server handler error: {exc!r}", "server_error"), 500)
                if fault == "lost_reply":
                    return _Fault("reset")
                if fault == "slow_reply":
                    return _Fault("timeout")
                return response
        with self._lock:
            self._requests_by_endpoint[f"{request.method} {request.path}"] += 1
        return _json_response(_error_body(f"no route for {request.method} {request.path}", "invalid_request_error"), 404)

    def _check_key(self, request: _Request) -> _Response | None:
        expected = self.config.require_api_key
        if expected is None:
            return None
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given == expected:
            return None
        return self._invalid_key(request)

    @staticmethod
    def _invalid_key(request: _Request) -> _Response:
        """OpenAI's 401, which echoes the key masked to its first 6 and last 4 characters."""
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        masked = given[:6] + "*" * max(0, len(given) - 10) + given[-4:] if len(given) > 10 else "***"
        message = f"Incorrect API key provided: {masked}. You can find your API key at https://example.invalid."
        return _json_response(_error_body(message, "invalid_request_error", "invalid_api_key"), 401)

    def _next_endpoint_fault(self, endpoint: str) -> str | None:
        with self._lock:
            queue = self.config.endpoint_faults.get(endpoint)
            if not queue:
                return None
            fault = queue.pop(0)
            if fault not in ENDPOINT_FAULT_KINDS:
                raise ValueError(f"unknown endpoint fault {fault!r}; one of {ENDPOINT_FAULT_KINDS}")
            self._faults[f"{endpoint} {fault}"] += 1
            return fault

    def _refusal(self, fault: str, request: _Request) -> _Response | _Fault:
        if fault == "401":
            return self._invalid_key(request)
        if fault == "500":
            return _json_response(_error_body("The server had an error while processing your request.", "server_error"), 500)
        if fault == "429":
            message = "Rate limit reached for requests."
            return _json_response(_error_body(message, "requests", "rate_limit_exceeded"), 429, [("retry-after-ms", "50")])
        return _Fault("reset")

    # ---------------------------------------------------------------------- chat completions
    def _rate_limit_state(self, now: float) -> tuple[int, float]:
        """(admitted requests in the window, seconds until the oldest leaves it)."""
        window = self.config.rate_window_s
        while self._admitted and self._admitted[0] <= now - window:
            self._admitted.popleft()
        reset = (self._admitted[0] + window - now) if self._admitted else 0.0
        return len(self._admitted), reset

    def _ratelimit_headers(self, now: float, body: Mapping[str, Any]) -> list[tuple[str, str]]:
        config = self.config
        if not config.send_ratelimit_headers:
            return []
        if config.rate_limit_rps:
            capacity = config.rate_limit_rps * config.rate_window_s
            in_window, reset = self._rate_limit_state(now)
            per_minute = 60.0 / config.rate_window_s
            limit = int(config.rate_limit_rps * 60)
            remaining = max(0, int((capacity - in_window) * per_minute))
        else:
            limit, remaining, reset = 1_000_000, 1_000_000, 0.0
        tokens = _prompt_tokens(body.get("messages")) + (_max_tokens(body) or 16)
        return [
            ("x-ratelimit-limit-requests", str(limit)),
            ("x-ratelimit-remaining-requests", str(remaining)),
            ("x-ratelimit-reset-requests", _format_duration(reset)),
            ("x-ratelimit-limit-tokens", str(config.tokens_per_minute)),
            ("x-ratelimit-remaining-tokens", str(max(0, config.tokens_per_minute - tokens))),
            ("x-ratelimit-reset-tokens", "0ms"),
        ]

    async def _chat_completions(self, request: _Request) -> _Response | _Fault:
        config = self.config
        now = time.monotonic()
        if config.rate_limit_rps:
            in_window, reset = self._rate_limit_state(now)
            if in_window >= config.rate_limit_rps * config.rate_window_s:
                with self._lock:
                    self._rate_limited += 1
                headers = [("retry-after", str(max(1, math.ceil(reset)))), ("retry-after-ms", str(max(1, math.ceil(reset * 1000))))]
                message = f"Rate limit reached: limit {config.rate_limit_rps:g} requests per {config.rate_window_s:g}s."
                return _json_response(_error_body(message, "requests", "rate_limit_exceeded"), 429, headers + self._ratelimit_headers(now, {}))
            self._admitted.append(now)
        body = request.json()
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _json_response(_error_body("'model' and a non-empty 'messages' list are required", "invalid_request_error"), 400)
        if body.get("stream"):
            return _json_response(_error_body("streaming is not supported by the fake server", "invalid_request_error", param="stream"), 400)
        fault = None
        if config.fault_rate and self._rng.random() < config.fault_rate:
            fault = self._rng.choice(config.fault_kinds)
            with self._lock:
                self._faults[fault] += 1
        delay = config.latency_s + (self._rng.uniform(-1, 1) * config.latency_jitter_s if config.latency_jitter_s else 0.0)
        if delay > 0 and fault != "timeout":
            await asyncio.sleep(delay)
        if fault == SLOW_ANSWER:
            self._complete_chat(body)  # the work is done (and billed) ...
            with self._lock:
                self._unanswered_paid += 1
            return _Fault("timeout")  # ... but the answer comes after the client gave up
        if fault == "500":
            return _json_response(_error_body("The server had an error while processing your request.", "server_error"), 500)
        if fault in ("timeout", "reset"):
            return _Fault(fault)
        completion = self._complete_chat(body)
        response = _json_response(completion, 200, self._ratelimit_headers(time.monotonic(), body))
        if fault == "truncated":
            return _Fault("truncated", response)
        response.chat_hash = chat_request_hash(body)
        return response

    def _complete_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        handler = self.config.chat_handler or default_chat_handler
        want_logprobs = bool(body.get("logprobs"))
        top_k = int(body.get("top_logprobs") or 0)
        max_tokens = _max_tokens(body)
        choices, completion_tokens = [], 0
        for index in range(int(body.get("n") or 1)):
            choice = handler(body, index)
            if isinstance(choice, str):
                choice = FakeChoice(content=choice)
            content, finish_reason = choice.content, choice.finish_reason
            tokens = tokenize(content)
            if max_tokens is not None and len(tokens) > max_tokens:
                content, finish_reason = "".join(tokens[:max_tokens]), "length"
                tokens = tokens[:max_tokens]
            completion_tokens += len(tokens)
            logprobs = None
            if want_logprobs:
                entries = choice.logprobs
                if entries is None:
                    entries = synthesize_logprobs(content, top_k, salt=_digest(body.get("messages"), index))
                logprobs = {
                    "content": [
                        {
                            "token": e.token,
                            "logprob": e.logprob,
                            "bytes": list(e.token.encode()),
                            "top_logprobs": [
                                {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in e.top_logprobs[:top_k]
                            ],
                        }
                        for e in entries
                    ],
                    "refusal": None,
                }
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": logprobs,
                    "finish_reason": finish_reason,
                }
            )
        prompt_tokens = _prompt_tokens(body["messages"])
        return {
            "id": _new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_fake",
        }

    # -------------------------------------------------------------------------------- models
    def _model_ids(self) -> list[str]:
        return list(self.config.models) + self._fine_tuned_models

    async def _list_models(self, request: _Request) -> _Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self._model_ids()]
        return _json_response({"object": "list", "data": data})

    async def _get_model(self, request: _Request, id: str) -> _Response:
        if id not in self._model_ids():
            return _json_response(_error_body(f"The model '{id}' does not exist", "invalid_request_error", "model_not_found"), 404)
        return _json_response({"id": id, "object": "model", "created": 0, "owned_by": "fake"})

    # --------------------------------------------------------------------------------- files
    def _store_file(self, filename: str, purpose: str, content: bytes) -> _File:
        stored = _File(_new_id("file-"), filename, purpose, content, int(time.time()))
        self._files[stored.id] = stored
        return stored

    async def _create_file(self, request: _Request) -> _Response:
        fields = _parse_multipart(request.headers.get("content-type", ""), request.body)
        if "file" not in fields or "purpose" not in fields:
            return _json_response(_error_body("multipart fields 'file' and 'purpose' are required", "invalid_request_error"), 400)
        filename, content = fields["file"]
        stored = self._store_file(filename or "upload.jsonl", fields["purpose"][1].decode(), content)
        return _json_response(stored.as_json())

    async def _list_files(self, request: _Request) -> _Response:
        purpose = (request.query.get("purpose") or [None])[0]
        data = [f.as_json() for f in self._files.values() if purpose is None or f.purpose == purpose]
        return _json_response({"object": "list", "data": data, "has_more": False})

    def _missing_file(self, id: str) -> _Response:
        return _json_response(_error_body(f"No such File object: {id}", "invalid_request_error", param="id"), 404)

    async def _get_file(self, request: _Request, id: str) -> _Response:
        return _json_response(self._files[id].as_json()) if id in self._files else self._missing_file(id)

    async def _delete_file(self, request: _Request, id: str) -> _Response:
        if self._files.pop(id, None) is None:
            return self._missing_file(id)
        return _json_response({"id": id, "object": "file", "deleted": True})

    async def _file_content(self, request: _Request, id: str) -> _Response:
        if id not in self._files:
            return self._missing_file(id)
        return _Response(200, self._files[id].content, content_type="application/octet-stream")

    # --------------------------------------------------------------------------- fine-tuning
    def _job_event(self, job: dict[str, Any], message: str, level: str = "info", data: dict | None = None) -> None:
        event = {
            "object": "fine_tuning.job.event",
            "id": _new_id("ftevent-"),
            "created_at": int(time.time()),
            "level": level,
            "message": message,
            "data": data or {},
            "type": "metrics" if data else "message",
        }
        job["_events"].append(event)

    async def _create_job(self, request: _Request) -> _Response:
        body = request.json()
        model, training_file = body.get("model"), body.get("training_file")
        if not model or not training_file:
            return _json_response(_error_body("'model' and 'training_file' are required", "invalid_request_error"), 400)
        if training_file not in self._files:
            return _json_response(_error_body(f"invalid training_file: {training_file}", "invalid_request_error", param="training_file"), 400)
        if self.config.reject_training_file is not None:
            return _json_response(_error_body(self.config.reject_training_file, "invalid_request_error", "invalid_training_file", "training_file"), 400)
        problem, n_tokens = _check_training_file(self._files[training_file].content)
        if problem:
            return _json_response(_error_body(problem, "invalid_request_error", "invalid_training_file", "training_file"), 400)
        given = dict(body.get("hyperparameters") or {})
        method = body.get("method") or {}
        given.update(((method.get(method.get("type") or "supervised") or {}).get("hyperparameters")) or {})
        hyper = {
            "n_epochs": given.get("n_epochs") if given.get("n_epochs") not in (None, "auto") else 1,
            "batch_size": given.get("batch_size") if given.get("batch_size") not in (None, "auto") else 4,
            "learning_rate_multiplier": given.get("learning_rate_multiplier")
            if given.get("learning_rate_multiplier") not in (None, "auto")
            else 2.0,
        }
        job: dict[str, Any] = {
            "id": _new_id("ftjob-"),
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "finished_at": None,
            "model": model,
            "fine_tuned_model": None,
            "organization_id": "org-fake",
            "status": "validating_files",
            "hyperparameters": hyper,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "training_file": training_file,
            "validation_file": body.get("validation_file"),
            "result_files": [],
            "trained_tokens": None,
            "error": None,
            "seed": body.get("seed") if body.get("seed") is not None else 42,
            "suffix": body.get("suffix"),
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata"),
            "_polls": 0,
            "_events": [],
            "_tokens": n_tokens,
        }
        self._job_event(job, f"Created fine-tuning job: {job['id']}")
        self._job_event(job, "Validating training file: " + training_file)
        self._jobs[job["id"]] = job
        return _json_response(_public(job))

    def _advance_job(self, job: dict[str, Any]) -> None:
        job["_polls"] += 1
        per_stage = max(1, self.config.fine_tune_polls_per_stage)
        if job["status"] == "validating_files" and job["_polls"] >= per_stage:
            job["status"] = "running"
            self._job_event(job, "Fine-tuning job started")
        elif job["status"] == "running":
            step = job["_polls"] - per_stage
            self._job_event(job, f"Step {step}/{per_stage}: training loss={1.5 / (step + 1):.4f}", data={"step": step, "train_loss": 1.5 / (step + 1)})
            if job["_polls"] >= 2 * per_stage:
                job["finished_at"] = int(time.time())
                if self.config.fine_tune_fail_with is not None:
                    job["status"] = "failed"
                    job["error"] = {"code": "training_failed", "message": self.config.fine_tune_fail_with, "param": None}
                    self._job_event(job, f"Fine-tuning job failed: {self.config.fine_tune_fail_with}", level="error")
                    return
                suffix = job["suffix"] or ""
                name = f"ft:{job['model']}:fake-org:{suffix}:{job['id'][-8:]}"
                job["status"] = "succeeded"
                job["fine_tuned_model"] = name
                job["trained_tokens"] = job["_tokens"] * int(job["hyperparameters"]["n_epochs"])
                metrics = "step,train_loss,train_accuracy\n" + "".join(f"{s},{1.5 / s:.4f},{0.5 + 0.04 * s:.3f}\n" for s in range(1, 6))
                job["result_files"] = [self._store_file("step_metrics.csv", "fine-tune-results", metrics.encode()).id]
                self._fine_tuned_models.append(name)
                self._job_event(job, f"New fine-tuned model created: {name}")
                self._job_event(job, "The job has successfully completed")

    def _missing_job(self, id: str) -> _Response:
        return _json_response(_error_body(f"No such fine-tuning job: {id}", "invalid_request_error", param="id"), 404)

    async def _get_job(self, request: _Request, id: str) -> _Response:
        if id not in self._jobs:
            return self._missing_job(id)
        job = self._jobs[id]
        if job["status"] in ("validating_files", "queued", "running"):
            self._advance_job(job)
        return _json_response(_public(job))

    async def _list_jobs(self, request: _Request) -> _Response:
        jobs = sorted(self._jobs.values(), key=lambda j: j["created_at"], reverse=True)
        return _json_response(_page([_public(j) for j in jobs], request))

    async def _job_events(self, request: _Request, id: str) -> _Response:
        if id not in self._jobs:
            return self._missing_job(id)
        return _json_response(_page(list(reversed(self._jobs[id]["_events"])), request))  # newest first

    async def _job_checkpoints(self, request: _Request, id: str) -> _Response:
        if id not in self._jobs:
            return self._missing_job(id)
        job = self._jobs[id]
        checkpoints = []
        if job["status"] == "succeeded":
            checkpoints.append(
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": _new_id("ftckpt_"),
                    "created_at": job["finished_at"],
                    "fine_tuned_model_checkpoint": job["fine_tuned_model"] + ":ckpt-step-5",
                    "fine_tuning_job_id": id,
                    "step_number": 5,
                    "metrics": {"step": 5, "train_loss": 0.3},
                }
            )
        return _json_response(_page(checkpoints, request))

    async def _cancel_job(self, request: _Request, id: str) -> _Response:
        if id not in self._jobs:
            return self._missing_job(id)
        job = self._jobs[id]
        if job["status"] in ("validating_files", "queued", "running"):
            job["status"] = "cancelled"
            job["finished_at"] = int(time.time())
            self._job_event(job, "Fine-tuning job cancelled")
        return _json_response(_public(job))

    # ------------------------------------------------------------------------------- batches
    async def _create_batch(self, request: _Request) -> _Response:
        body = request.json()
        input_file_id = body.get("input_file_id")
        if input_file_id not in self._files:
            return _json_response(_error_body(f"invalid input_file_id: {input_file_id}", "invalid_request_error", param="input_file_id"), 400)
        if body.get("endpoint") != "/v1/chat/completions":
            return _json_response(_error_body("the fake server batches /v1/chat/completions only", "invalid_request_error", param="endpoint"), 400)
        now = int(time.time())
        batch = {
            "id": _new_id("batch_"),
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
        self._batches[batch["id"]] = batch
        return _json_response(_public(batch))

    def _process_batch(self, batch: dict[str, Any]) -> None:
        lines = [line for line in self._files[batch["input_file_id"]].content.decode().splitlines() if line.strip()]
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
                batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": str(exc), "param": None, "line": number}]}
                return
            request_id = _new_id("req_")
            fail = self._rng.random() < self.config.batch_line_error_rate
            if fail and self.config.batch_line_errors_transient:
                fail = custom_id not in self._failed_batch_ids
            if fail:
                self._failed_batch_ids.add(custom_id)
                error = _error_body("The server had an error while processing your request.", "server_error")
                errors.append({"id": _new_id("batch_req_"), "custom_id": custom_id, "response": {"status_code": 500, "request_id": request_id, "body": error}, "error": None})
                continue
            outputs.append({"id": _new_id("batch_req_"), "custom_id": custom_id, "response": {"status_code": 200, "request_id": request_id, "body": self._complete_chat(body)}, "error": None})
            with self._lock:
                self._chat_answers[chat_request_hash(body)] += 1

        def jsonl(rows: list[dict]) -> bytes:
            return "".join(_canonical(r) + "\n" for r in rows).encode()

        if outputs:
            batch["output_file_id"] = self._store_file(f"{batch['id']}_output.jsonl", "batch_output", jsonl(outputs)).id
        if errors:
            batch["error_file_id"] = self._store_file(f"{batch['id']}_error.jsonl", "batch_output", jsonl(errors)).id
        now = int(time.time())
        batch.update(status="completed", finalizing_at=now, completed_at=now)
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}

    def _missing_batch(self, id: str) -> _Response:
        return _json_response(_error_body(f"No such batch: {id}", "invalid_request_error", param="id"), 404)

    async def _get_batch(self, request: _Request, id: str) -> _Response:
        if id not in self._batches:
            return self._missing_batch(id)
        batch = self._batches[id]
        if batch["status"] in ("validating", "in_progress"):
            batch["_polls"] += 1
            if batch["_polls"] >= self.config.batch_polls_to_complete:
                self._process_batch(batch)
            else:
                batch["status"], batch["in_progress_at"] = "in_progress", batch["in_progress_at"] or int(time.time())
        return _json_response(_public(batch))

    async def _list_batches(self, request: _Request) -> _Response:
        batches = sorted(self._batches.values(), key=lambda b: b["created_at"], reverse=True)
        return _json_response(_page([_public(b) for b in batches], request))

    async def _cancel_batch(self, request: _Request, id: str) -> _Response:
        if id not in self._batches:
            return self._missing_batch(id)
        batch = self._batches[id]
        if batch["status"] in ("validating", "in_progress"):
            now = int(time.time())
            batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
        return _json_response(_public(batch))

    async def _stats_endpoint(self, request: _Request) -> _Response:
        stats = self.stats()
        return _json_response(
            {
                "requests_by_endpoint": stats.requests_by_endpoint,
                "chat_answers": stats.chat_answers,
                "faults": stats.faults,
                "rate_limited": stats.rate_limited,
                "unanswered_paid": stats.unanswered_paid,
            }
        )


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored object without its private ``_`` bookkeeping fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _page(items: list[dict[str, Any]], request: _Request) -> dict[str, Any]:
    """OpenAI cursor pagination: ``after`` (an id) and ``limit``."""
    after = (request.query.get("after") or [None])[0]
    limit = int((request.query.get("limit") or ["20"])[0])
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
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


def _check_training_file(content: bytes) -> tuple[str | None, int]:
    """OpenAI-like validation of a chat fine-tuning JSONL: (problem or None, token count)."""
    tokens = 0
    lines = [line for line in content.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        return "Training file is empty.", 0
    for number, line in enumerate(lines, 1):
        try:
            messages = json.loads(line)["messages"]
        except (ValueError, KeyError, TypeError):
            return f"Invalid file format. Line {number}: expected a JSON object with a 'messages' list.", 0
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
            return f"Invalid file format. Line {number}: every message needs 'role' and 'content'.", 0
        if not any(m["role"] == "assistant" for m in messages):
            return f"Invalid file format. Line {number}: no assistant message to train on.", 0
        tokens += _prompt_tokens(messages)
    return None, tokens


def main(argv: list[str] | None = None) -> None:
    """Run the fake server in the foreground: ``python -m em_assets.testing.fake_openai_server``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--hang", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        port=args.port,
        latency_s=args.latency,
        latency_jitter_s=args.jitter,
        rate_limit_rps=args.rate_limit,
        fault_rate=args.fault_rate,
        hang_s=args.hang,
        seed=args.seed,
    )
    with server:
        print(server.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
