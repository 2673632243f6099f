"""How the fake server misbehaves on purpose: the chat rate limit, random chat faults, scripted
control-plane faults (``endpoint_faults``), the API key check, and the socket-level faults.

Faults act below HTTP where a real network does: a reset closes the socket with RST, a timeout
hangs without answering, a truncated answer stops mid-body.
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
from collections import deque

import h11

from em_assets.testing.fake_openai.chat import request_tokens
from em_assets.testing.fake_openai.config import ENDPOINT_FAULT_KINDS, FakeServerConfig, ServerContext
from em_assets.testing.fake_openai.wire import (
    SERVER_ERROR_MESSAGE,
    Fault,
    Request,
    Response,
    error_body,
    error_response,
    json_response,
    response_head,
)


def format_duration(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: "20ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


class RateLimiter:
    """A sliding window of admitted chat requests (``rate_limit_rps`` per ``rate_window_s``) and
    the ``x-ratelimit-*`` headers it implies. The token figures are reported, never enforced."""

    def __init__(self) -> None:
        self._admitted: deque[float] = deque()

    def _state(self, config: FakeServerConfig, now: float) -> tuple[int, float]:
        """(admitted requests in the window, seconds until the oldest leaves it)."""
        window = config.rate_window_s
        while self._admitted and self._admitted[0] <= now - window:
            self._admitted.popleft()
        reset = (self._admitted[0] + window - now) if self._admitted else 0.0
        return len(self._admitted), reset

    def admit(self, config: FakeServerConfig, now: float) -> Response | None:
        """None when the request is admitted (and counted in the window), else the 429 to send."""
        if not config.rate_limit_rps:
            return None
        in_window, reset = self._state(config, now)
        if in_window >= config.rate_limit_rps * config.rate_window_s:
            message = f"Rate limit reached: limit {config.rate_limit_rps:g} requests per {config.rate_window_s:g}s."
            refusal = error_response(429, message, "requests", "rate_limit_exceeded")
            refusal.headers = [
                ("retry-after", str(max(1, math.ceil(reset)))),
                ("retry-after-ms", str(max(1, math.ceil(reset * 1000)))),
                # The refused request's body is never read: its headers count an empty request.
                *self.headers(config, now, request_tokens({})),
            ]
            return refusal
        self._admitted.append(now)
        return None

    def headers(self, config: FakeServerConfig, now: float, tokens: int) -> list[tuple[str, str]]:
        if not config.send_ratelimit_headers:
            return []
        if config.rate_limit_rps:
            capacity = config.rate_limit_rps * config.rate_window_s
            in_window, reset = self._state(config, now)
            per_minute = 60.0 / config.rate_window_s
            limit = int(config.rate_limit_rps * 60)
            remaining = max(0, int((capacity - in_window) * per_minute))
        else:
            limit, remaining, reset = 1_000_000, 1_000_000, 0.0
        return [
            ("x-ratelimit-limit-requests", str(limit)),
            ("x-ratelimit-remaining-requests", str(remaining)),
            ("x-ratelimit-reset-requests", format_duration(reset)),
            ("x-ratelimit-limit-tokens", str(config.tokens_per_minute)),
            ("x-ratelimit-remaining-tokens", str(max(0, config.tokens_per_minute - tokens))),
            ("x-ratelimit-reset-tokens", "0ms"),
        ]


def pick_chat_fault(context: ServerContext) -> str | None:
    """A fault kind for this chat request with probability ``fault_rate``, counted, else None."""
    config = context.config
    if not (config.fault_rate and context.rng.random() < config.fault_rate):
        return None
    fault = context.rng.choice(config.fault_kinds)
    context.counters.count_fault(fault)
    return fault


def check_key(config: FakeServerConfig, request: Request) -> Response | None:
    """None when no key is required or the bearer token matches, else the 401."""
    expected = config.require_api_key
    if expected is None:
        return None
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if given == expected:
        return None
    return invalid_key(request)


def invalid_key(request: Request) -> Response:
    """OpenAI's 401, which echoes the key masked to its first 6 and last 4 characters."""
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    masked = given[:6] + "*" * max(0, len(given) - 10) + given[-4:] if len(given) > 10 else "***"
    message = f"Incorrect API key provided: {masked}. You can find your API key at https://example.invalid."
    return error_response(401, message, "invalid_request_error", "invalid_api_key")


def next_endpoint_fault(context: ServerContext, endpoint: str) -> str | None:
    """Pop the next scripted fault for ``endpoint`` ("POST /v1/files"), counted, or None."""
    counters = context.counters
    with counters.lock:  # the test's thread may be editing the queues
        queue = context.config.endpoint_faults.get(endpoint)
        if not queue:
            return None
        fault = queue.pop(0)
        if fault not in ENDPOINT_FAULT_KINDS:
            raise ValueError(f"unknown endpoint fault {fault!r}; one of {ENDPOINT_FAULT_KINDS}")
        counters.faults[f"{endpoint} {fault}"] += 1
        return fault


def refusal(fault: str, request: Request) -> Response | Fault:
    """The answer to a request refused by a scripted fault before anything is done."""
    if fault == "401":
        return invalid_key(request)
    if fault == "500":
        return error_response(500, SERVER_ERROR_MESSAGE, "server_error")
    if fault == "429":
        body = error_body("Rate limit reached for requests.", "requests", "rate_limit_exceeded")
        return json_response(body, 429, [("retry-after-ms", "50")])
    return Fault("reset")


async def apply_fault(fault: Fault, context: ServerContext, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
    """Misbehave on the connection instead of answering; the connection is closed afterwards."""
    if fault.kind == "timeout":
        await asyncio.sleep(context.config.hang_s)
    elif fault.kind == "truncated" and fault.response is not None:
        response = fault.response
        body = response.body[: max(1, len(response.body) // 2)]
        # Say we close, so the client does not reuse the connection for its next request.
        response.headers.append(("connection", "close"))
        if context.rng.random() < 0.5:
            # Framing intact, JSON cut: a "complete" 200 whose body does not parse.
            writer.write(response_head(conn, response, len(body)) + body)
        else:
            # Promised length never arrives: the client sees the connection end mid-body.
            writer.write(response_head(conn, response, len(response.body)) + body)
        await writer.drain()
        writer.close()
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:  # SO_LINGER 0: close with RST, as a dropped connection does
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
