"""``POST /v1/chat/completions``: the rate limit, a random fault and the latency come first, then
the answer from ``chat.py``. The only endpoint that latency, rate limits and random faults touch."""

from __future__ import annotations

import asyncio
import time

from em_assets.testing.fake_openai.chat import chat_request_hash, complete_chat, request_tokens
from em_assets.testing.fake_openai.config import SLOW_ANSWER, ServerContext
from em_assets.testing.fake_openai.faults import RateLimiter, pick_chat_fault
from em_assets.testing.fake_openai.wire import (
    SERVER_ERROR_MESSAGE,
    Fault,
    Request,
    Response,
    error_response,
    json_response,
)


class ChatCompletions:
    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.rate_limiter = RateLimiter()

    async def create(self, request: Request) -> Response | Fault:
        context, config = self.context, self.context.config
        refused = self.rate_limiter.admit(config, time.monotonic())
        if refused is not None:
            context.counters.count_rate_limited()
            return refused
        body = request.json()
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not body.get("model") or not isinstance(messages, list) or not messages:
            return error_response(400, "'model' and a non-empty 'messages' list are required")
        if body.get("stream"):
            return error_response(400, "streaming is not supported by the fake server", param="stream")
        fault = pick_chat_fault(context)
        jitter = context.rng.uniform(-1, 1) * config.latency_jitter_s if config.latency_jitter_s else 0.0
        delay = config.latency_s + jitter
        if delay > 0 and fault != "timeout":
            await asyncio.sleep(delay)
        if fault == SLOW_ANSWER:
            complete_chat(body, config.chat_handler)  # the work is done (and billed) ...
            context.counters.count_unanswered_paid()
            return Fault("timeout")  # ... but the answer comes after the client gave up
        if fault == "500":
            return error_response(500, SERVER_ERROR_MESSAGE, "server_error")
        if fault in ("timeout", "reset"):
            return Fault(fault)
        completion = complete_chat(body, config.chat_handler)
        headers = self.rate_limiter.headers(config, time.monotonic(), request_tokens(body))
        response = json_response(completion, 200, headers)
        if fault == "truncated":
            return Fault("truncated", response)
        response.chat_hash = chat_request_hash(body)
        return response
