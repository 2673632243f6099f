"""Batch API mode: round trip with failed lines retried, and resuming after a crash."""

from __future__ import annotations

import pytest

from em_assets.llm import BatchSettings, ChatRequest
from em_assets.llm.batch import BatchRunner
from em_assets.llm.cache import ResponseCache
from em_assets.llm.ledger import LEDGER_TABLE
from em_assets.testing import chat_request_hash

FAST_BATCH = BatchSettings(poll_interval_s=0.01, max_rounds=3)


class SimulatedCrash(BaseException):
    """Stands in for kill -9: escapes every except clause of the engine."""


def judge_requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest.user(
            "gpt-4o-2024-08-06",
            f"Score answer {i} for alignment, 0-100.",
            max_tokens=1,
            temperature=0,
            logprobs=True,
            top_logprobs=20,
        )
        for i in range(n)
    ]


def test_batch_round_trip_retries_failed_lines(make_server, make_engine, warehouse):
    server = make_server(batch_polls_to_complete=3, batch_line_error_rate=0.3, seed=5)
    engine = make_engine(server, warehouse=warehouse, batch=FAST_BATCH, tags={"asset": "judge"})
    requests = judge_requests(40)

    results = engine.complete_many(requests)

    stats = server.stats()
    assert all(r.ok and r.logprobs and len(r.logprobs[0].top_logprobs) == 20 for r in results)
    assert stats.requests("POST /v1/batches") == 2  # the first batch + one batch of failed lines
    assert stats.requests("POST /v1/files") == 2 and stats.chat_requests == 0
    assert stats.chat_answers.keys() == {chat_request_hash(r.openai_body()) for r in requests}
    assert stats.duplicate_answers == {}
    ledger = warehouse.table(LEDGER_TABLE)
    assert ledger.height == 40 and set(ledger["mode"]) == {"batch"}
    assert set(ledger["attempts"]) == {1, 2}  # batch round of each line
    # Half price: compare with the synchronous estimate for the same tokens.
    row = ledger.row(0, named=True)
    full = engine.prices.estimate(row["model"], row["tokens_in"], row["tokens_out"])
    assert row["cost_usd"] == pytest.approx(full / 2)

    before = server.stats().total_requests
    assert all(r.cache_hit for r in engine.complete_many(requests))
    assert server.stats().total_requests == before


def test_crash_after_submit_resumes_the_same_batch(make_server, make_engine, monkeypatch, cache_path):
    server = make_server(batch_polls_to_complete=2)
    requests = judge_requests(10)

    original = BatchRunner._wait_and_ingest

    async def crash(self, *args, **kwargs):
        raise SimulatedCrash

    monkeypatch.setattr(BatchRunner, "_wait_and_ingest", crash)
    with pytest.raises(SimulatedCrash):
        make_engine(server, batch=FAST_BATCH).complete_many(requests)
    assert server.stats().requests("POST /v1/batches") == 1
    with ResponseCache(cache_path) as cache:
        (record,) = cache.unfinished_batches("openai_compatible:" + server.base_url.split("/")[2])
        assert record.status == "submitted" and record.batch_id

    monkeypatch.setattr(BatchRunner, "_wait_and_ingest", original)
    results = make_engine(server, batch=FAST_BATCH).complete_many(requests)
    assert all(r.ok for r in results)
    assert server.stats().requests("POST /v1/batches") == 1  # resumed, not resubmitted
    assert server.stats().duplicate_answers == {}


def test_crash_between_create_and_recording_the_id_finds_the_batch_by_metadata(make_server, make_engine, monkeypatch):
    server = make_server()
    requests = judge_requests(6)
    original = ResponseCache.update_batch_record

    def crash_on_batch_id(self, batch_key, **fields):
        if "batch_id" in fields:
            raise SimulatedCrash
        return original(self, batch_key, **fields)

    monkeypatch.setattr(ResponseCache, "update_batch_record", crash_on_batch_id)
    with pytest.raises(SimulatedCrash):
        make_engine(server, batch=FAST_BATCH).complete_many(requests)
    monkeypatch.setattr(ResponseCache, "update_batch_record", original)

    results = make_engine(server, batch=FAST_BATCH).complete_many(requests)
    assert all(r.ok for r in results)
    stats = server.stats()
    assert stats.requests("POST /v1/batches") == 1 and stats.requests("GET /v1/batches") >= 1


def test_lost_replies_to_the_upload_and_the_create_make_one_file_and_one_batch(make_server, make_engine):
    # Both calls take effect at the provider, then their answers are lost (connection reset).
    server = make_server(endpoint_faults={"POST /v1/files": ["lost_reply"], "POST /v1/batches": ["lost_reply"]})
    requests = judge_requests(8)
    results = make_engine(server, batch=FAST_BATCH).complete_many(requests)
    assert all(r.ok for r in results)
    assert len(server.uploaded_files("batch")) == 1 and len(server.batches()) == 1
    assert server.stats().requests("POST /v1/files") == 1 and server.stats().requests("POST /v1/batches") == 1
    assert server.stats().duplicate_answers == {}
