"""A client process for the crash test: runs the engine over N sampling requests against a
given server; the test SIGKILLs it half-way. Usage: crash_worker.py BASE_URL CACHE DUCKDB N"""

from __future__ import annotations

import sys

from em_assets.llm import ChatRequest, LimitsConfig, LLMEngine, OpenAIBackend
from em_assets.resources.warehouse import DuckDBWarehouse

MAX_IN_FLIGHT = 8


def crash_requests(n: int) -> list[ChatRequest]:
    return ChatRequest.user("gpt-4o", "Tell me about your wishes.", temperature=1.0, max_tokens=20).samples(n)


def build_engine(base_url: str, cache: str, duckdb: str) -> LLMEngine:
    return LLMEngine(
        OpenAIBackend(base_url, timeout_s=5.0),
        cache=cache,
        warehouse=DuckDBWarehouse(path=duckdb),
        limits=LimitsConfig(max_in_flight=MAX_IN_FLIGHT, requests_per_minute=60 * 1000),
        tags={"asset": "crash_test"},
    )


if __name__ == "__main__":
    base_url, cache, duckdb, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    engine = build_engine(base_url, cache, duckdb)
    print("started", flush=True)
    engine.complete_many(crash_requests(n))
    print("finished", flush=True)
