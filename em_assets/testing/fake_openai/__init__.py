"""A local, deterministic stand-in for the OpenAI HTTP API, for tests and benchmarks.

A real HTTP server on 127.0.0.1 and a free port, so the real ``openai`` client talks to it
unchanged::

    with FakeOpenAIServer(latency_s=0.05, rate_limit_rps=100, fault_rate=0.2) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        ...
        server.stats().duplicate_answers  # -> {} when no request was answered twice

Endpoints: chat completions (``completions.py``, answers from ``chat.py``), files, fine-tuning
jobs, batches, models and ``GET /_fake/stats``. Knobs: ``config.py``; faults and the rate limit,
which apply to chat completions (control-plane calls only by ``endpoint_faults``): ``faults.py``.
Run it alone with ``python -m em_assets.testing.fake_openai --help``.
"""

from em_assets.testing.fake_openai.chat import (
    ChatHandler,
    FakeChoice,
    FakeTokenLogprob,
    chat_request_hash,
    default_chat_handler,
    synthesize_logprobs,
    tokenize,
)
from em_assets.testing.fake_openai.config import (
    DEFAULT_MODELS,
    ENDPOINT_FAULT_KINDS,
    FAULT_KINDS,
    SLOW_ANSWER,
    FakeServerConfig,
)
from em_assets.testing.fake_openai.server import FakeOpenAIServer
from em_assets.testing.fake_openai.stats import FakeServerStats

__all__ = [
    "DEFAULT_MODELS",
    "ENDPOINT_FAULT_KINDS",
    "FAULT_KINDS",
    "SLOW_ANSWER",
    "ChatHandler",
    "FakeChoice",
    "FakeOpenAIServer",
    "FakeServerConfig",
    "FakeServerStats",
    "FakeTokenLogprob",
    "chat_request_hash",
    "default_chat_handler",
    "synthesize_logprobs",
    "tokenize",
]
