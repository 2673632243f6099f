"""The fake server itself: an HTTP/1.1 server (``h11`` over asyncio, in a background thread) on
127.0.0.1, the route table, the models endpoint and the counters a test reads.

A hand-rolled server rather than starlette/uvicorn because fault injection needs to act below
ASGI: close a socket with RST and no response, hang without answering, or send a body cut
short, none of which an ASGI app can express.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

from em_assets.testing.fake_openai.batches import Batches
from em_assets.testing.fake_openai.completions import ChatCompletions
from em_assets.testing.fake_openai.config import FakeServerConfig, ServerContext
from em_assets.testing.fake_openai.faults import apply_fault, check_key, next_endpoint_fault, refusal
from em_assets.testing.fake_openai.files import FileStore
from em_assets.testing.fake_openai.finetuning import FineTuningJobs
from em_assets.testing.fake_openai.stats import Counters, FakeServerStats
from em_assets.testing.fake_openai.wire import Fault, Request, Response, error_response, json_response, response_head

_STATS_ROUTE = "/_fake/stats"
Route = tuple[str, str, re.Pattern[str], Callable[..., Any]]  # method, template, pattern, handler


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
        config = config or FakeServerConfig(**knobs)
        self._context = ServerContext(config, random.Random(config.seed), Counters())
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._chat = ChatCompletions(self._context)
        self._files = FileStore(self._context.counters)
        self._jobs = FineTuningJobs(self._context, self._files)
        self._batches = Batches(self._context, self._files)
        self._routes = self._build_routes()

    @property
    def config(self) -> FakeServerConfig:
        return self._context.config

    @config.setter
    def config(self, config: FakeServerConfig) -> None:
        self._context.config = config

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
        return self._context.counters.snapshot()

    def fine_tuning_jobs(self) -> list[dict[str, Any]]:
        """Every job created at this server, as the API shows it (oldest first)."""
        return self._jobs.created()

    def uploaded_files(self, purpose: str | None = None) -> list[dict[str, Any]]:
        return self._files.uploaded(purpose)

    def batches(self) -> list[dict[str, Any]]:
        return self._batches.created()

    def reset_counters(self) -> None:
        self._context.counters.reset()

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
                if isinstance(outcome, Fault):
                    await apply_fault(outcome, self._context, conn, writer)
                    return
                await self._write(conn, writer, outcome)
                if outcome.chat_hash is not None:
                    self._context.counters.count_answer(outcome.chat_hash)
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(task)
            writer.close()

    @staticmethod
    async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
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
                return Request(head.method.decode(), parts.path, parse_qs(parts.query), headers, bytes(body))

    @staticmethod
    async def _write(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
        data = response_head(conn, response, len(response.body))
        data += conn.send(h11.Data(data=response.body)) + conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()

    # ------------------------------------------------------------------------------- routing
    def _build_routes(self) -> list[Route]:
        files, jobs, batches = self._files, self._jobs, self._batches
        table = [
            ("POST", "/v1/chat/completions", self._chat.create),
            ("GET", "/v1/models", self._list_models),
            ("GET", "/v1/models/{id}", self._get_model),
            ("POST", "/v1/files", files.create),
            ("GET", "/v1/files", files.list_all),
            ("GET", "/v1/files/{id}", files.retrieve),
            ("DELETE", "/v1/files/{id}", files.delete),
            ("GET", "/v1/files/{id}/content", files.content),
            ("POST", "/v1/fine_tuning/jobs", jobs.create),
            ("GET", "/v1/fine_tuning/jobs", jobs.list_all),
            ("GET", "/v1/fine_tuning/jobs/{id}", jobs.retrieve),
            ("GET", "/v1/fine_tuning/jobs/{id}/events", jobs.events),
            ("POST", "/v1/fine_tuning/jobs/{id}/cancel", jobs.cancel),
            ("GET", "/v1/fine_tuning/jobs/{id}/checkpoints", jobs.checkpoints),
            ("POST", "/v1/batches", batches.create),
            ("GET", "/v1/batches", batches.list_all),
            ("GET", "/v1/batches/{id}", batches.retrieve),
            ("POST", "/v1/batches/{id}/cancel", batches.cancel),
            ("GET", _STATS_ROUTE, self._stats_endpoint),
        ]
        routes = []
        for method, template, handler in table:
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$")
            routes.append((method, template, pattern, handler))
        return routes

    async def _dispatch(self, request: Request) -> Response | Fault:
        counters = self._context.counters
        for method, template, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if not (match and method == request.method):
                continue
            endpoint = f"{method} {template}"
            counters.count_request(endpoint)
            if template != _STATS_ROUTE:
                denied = check_key(self._context.config, request)
                if denied is not None:
                    return denied
            fault = next_endpoint_fault(self._context, endpoint)
            if fault in ("reset", "500", "401", "429"):
                return refusal(fault, request)
            try:
                response = await handler(request, **match.groupdict())
            except (ValueError, KeyError, TypeError) as exc:
                return error_response(400, f"invalid request: {exc}")
            except Exception as exc:  # a test's handler raised: answer like a provider bug
                return error_response(500, f"fake server handler error: {exc!r}", "server_error")
            if fault == "lost_reply":
                return Fault("reset")
            if fault == "slow_reply":
                return Fault("timeout")
            return response
        counters.count_request(f"{request.method} {request.path}")
        return error_response(404, f"no route for {request.method} {request.path}")

    # -------------------------------------------------------------------------------- models
    def _model_ids(self) -> list[str]:
        return list(self._context.config.models) + self._jobs.fine_tuned_models

    async def _list_models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self._model_ids()]
        return json_response({"object": "list", "data": data})

    async def _get_model(self, request: Request, id: str) -> Response:
        if id not in self._model_ids():
            return error_response(404, f"The model '{id}' does not exist", code="model_not_found")
        return json_response({"id": id, "object": "model", "created": 0, "owned_by": "fake"})

    async def _stats_endpoint(self, request: Request) -> Response:
        stats = self.stats()
        return json_response(
            {
                "requests_by_endpoint": stats.requests_by_endpoint,
                "chat_answers": stats.chat_answers,
                "faults": stats.faults,
                "rate_limited": stats.rate_limited,
                "unanswered_paid": stats.unanswered_paid,
            }
        )
