"""Cache persistence and concurrency, ledger rows, spool claims and summaries (no server)."""

from __future__ import annotations

import multiprocessing

import polars as pl

from em_assets.llm.cache import ResponseCache
from em_assets.llm.ledger import LEDGER_TABLE, CallSummary, CostLedger, ledger_row, rows_to_frame
from em_assets.llm.progress import ProgressEvent, eta_seconds
from em_assets.llm.request import Completion


def completion(text: str = "hi") -> Completion:
    return Completion(text=text, finish_reason="stop", tokens_in=5, tokens_out=2, served_model="gpt-4o")


def row(**overrides) -> dict:
    fields = dict(
        cache_key="k" * 64, endpoint_family="openai", base_url_host="api.openai.com", model="gpt-4o", sample_index=0,
        mode="sync", tokens_in=5, tokens_out=2, cost_usd=0.001, cache_hit=False, latency_s=0.2, attempts=1, error=None,
        tags={"asset": "samples", "run_id": "r1", "question_id": "q1"},
    )  # fmt: skip
    fields.update(overrides)
    return ledger_row(**fields)


def test_ledger_row_splits_known_tags_into_columns():
    r = row()
    assert (r["asset"], r["run_id"], r["partition_key"]) == ("samples", "r1", None)
    assert r["tags"] == '{"question_id": "q1"}'
    frame = rows_to_frame([r, row(error="boom", cost_usd=None)])
    assert frame.height == 2 and frame["status"].to_list() == ["ok", "error"]
    assert frame.schema["created_at"] == pl.Datetime("us")


def test_summary_counts_and_metadata():
    summary = CallSummary()
    summary.add(row())
    summary.add(row(cache_hit=True, cost_usd=0.0, attempts=0))
    summary.add(row(cost_usd=None))  # an unpriced model
    summary.add(row(error="x", tokens_in=0, tokens_out=0, cost_usd=0.0, attempts=3))
    assert (summary.calls, summary.cache_hits, summary.network_calls, summary.failed) == (4, 1, 3, 1)
    assert summary.unpriced_calls == 1 and summary.attempts == 5
    metadata = summary.as_metadata()
    assert metadata["llm_cost_usd"] == 0.001 and metadata["llm_tokens_in"] == 15


def test_cache_put_get_persist_and_first_writer_wins(tmp_path):
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        assert cache.put("a", completion("first"), request={}, endpoint_family="openai", model="m")
        assert not cache.put("a", completion("second"), request={}, endpoint_family="openai", model="m")
    with ResponseCache(path) as cache:
        assert cache.get("a").text == "first"
        assert cache.get_many(["a", "missing"]).keys() == {"a"}
        assert len(cache) == 1


def _writer(path: str, prefix: str, n: int) -> None:
    with ResponseCache(path) as cache:
        for i in range(n):
            cache.put(f"{prefix}{i}", completion(f"{prefix}{i}"), request={}, endpoint_family="openai", model="m")
            cache.put(f"shared{i}", completion(prefix), request={}, endpoint_family="openai", model="m")


def test_two_processes_share_one_cache_file(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ResponseCache(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, p, 150)) for p in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with ResponseCache(path) as cache:
        assert len(cache) == 450


def test_spooled_rows_are_flushed_to_their_duckdb_file_and_a_replay_adds_nothing(tmp_path, warehouse):
    cache = ResponseCache(tmp_path / "c.sqlite")
    target = str(warehouse.resolved_path)
    # Rows a crashed run left in the spool, plus rows for another DuckDB file.
    spooled = row()
    cache.put(
        "k1", completion(), request={}, endpoint_family="openai", model="m", ledger_row=spooled, ledger_target=target
    )
    cache.spool("/elsewhere.duckdb", [row()])

    ledger = CostLedger(warehouse, cache, flush_rows=2)
    ledger.note(row(error="boom", tokens_in=0, tokens_out=0), spooled=False)  # a failure: spooled as it is noted
    assert cache.spooled_count(target) == 2
    ledger.note(row(cache_hit=True, attempts=0), spooled=False)  # a hit: in memory until the flush
    assert cache.spooled_count(target) == 2
    assert ledger.flush() == 3
    assert ledger.flush() == 0
    assert warehouse.table(LEDGER_TABLE).height == 3
    assert cache.spooled_count(target) == 0 and cache.spooled_count() == 1

    # A flush killed after DuckDB's commit but before the spool delete replays the row: no duplicate.
    cache.spool(target, [spooled])
    assert ledger.flush() == 0 and warehouse.table(LEDGER_TABLE).height == 3
    assert cache.spooled_count(target) == 0
    cache.close()


def test_progress_event_text():
    event = ProgressEvent(done=50, total=200, cache_hits=10, failed=1, elapsed_s=4.0, rate_per_s=10.0, eta_s=15.0)
    assert str(event) == "50/200 LLM calls (10 cached, 1 failed), 10.0/s, ETA 15s"
    assert eta_seconds(0, 0.0) == 0.0 and eta_seconds(5, 0.0) is None and eta_seconds(10, 2.0) == 5.0
