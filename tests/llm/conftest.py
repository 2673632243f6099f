"""Fixtures for the LLM engine tests: a fake OpenAI server per test and engines wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from em_assets.llm import LimitsConfig, LLMEngine, OpenAIBackend, ResponseCache, RetryPolicy
from em_assets.testing import FakeOpenAIServer

CANARY_KEY = "sk-canary-7f3e9a1b2c4d5e6f8a9b0c1d2e3f4a5b"

# Short timeouts and backoffs keep fault-injection tests fast; the server's hang outlasts the
# client timeout so a "timeout" fault really is one.
FAST_RETRY = RetryPolicy(max_attempts=12, initial_backoff_s=0.02, max_backoff_s=0.5)
CLIENT_TIMEOUT_S = 0.5


@pytest.fixture
def make_server(fake_server) -> Callable[..., FakeOpenAIServer]:
    """``fake_server`` (tests/conftest.py) with a hang that outlasts the client timeout."""

    def start(**knobs: Any) -> FakeOpenAIServer:
        knobs.setdefault("hang_s", 1.5)
        return fake_server(**knobs)

    return start


@pytest.fixture
def api_key(monkeypatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    return CANARY_KEY


@pytest.fixture
def cache_path(tmp_path) -> Path:
    return tmp_path / "llm_cache" / "cache.sqlite"


@pytest.fixture
def make_engine(cache_path, api_key) -> Iterator[Callable[..., LLMEngine]]:
    engines: list[LLMEngine] = []

    def build(server: FakeOpenAIServer, **kwargs: Any) -> LLMEngine:
        limits = kwargs.pop("limits", None) or LimitsConfig(
            max_in_flight=kwargs.pop("max_in_flight", 32),
            requests_per_minute=kwargs.pop("requests_per_minute", 60 * 200),
        )
        backend = OpenAIBackend(server.base_url, timeout_s=kwargs.pop("timeout_s", CLIENT_TIMEOUT_S))
        engine = LLMEngine(
            backend,
            cache=kwargs.pop("cache", None) or ResponseCache(cache_path),
            limits=limits,
            retry=kwargs.pop("retry", FAST_RETRY),
            **kwargs,
        )
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.close()
        engine.cache.close()
