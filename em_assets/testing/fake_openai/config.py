"""The fake server's knobs (:class:`FakeServerConfig`), the fault kinds they accept, and the
state every endpoint group shares.

Knobs may be changed while the server runs (``server.config.fault_rate = 0``): endpoints read
them through the shared :class:`ServerContext` on every request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from em_assets.testing.fake_openai.chat import ChatHandler
from em_assets.testing.fake_openai.stats import Counters

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
class ServerContext:
    """What the endpoint groups share. One generator for every random draw, so that the seed
    fixes faults, latency jitter and batch line errors together, in arrival order."""

    config: FakeServerConfig
    rng: random.Random
    counters: Counters
