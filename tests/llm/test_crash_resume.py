"""A client killed with SIGKILL half-way loses at most its in-flight calls; the rerun makes only
the missing calls, and the crashed run's paid calls still reach the ledger."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from em_assets.llm import ChatRequest
from em_assets.llm.ledger import LEDGER_TABLE
from em_assets.testing import chat_request_hash
from tests.llm.crash_worker import MAX_IN_FLIGHT, build_engine, crash_requests

REPO = Path(__file__).resolve().parents[2]
N = 200


def cached_count(path: Path) -> int:
    if not path.exists():
        return 0
    con = sqlite3.connect(path, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0
    finally:
        con.close()


def test_sigkill_half_way_then_rerun_makes_only_the_missing_calls(make_server, tmp_path, warehouse, api_key):
    server = make_server(latency_s=0.02, rate_limit_rps=60)  # ~3.5 s for the whole run
    cache = tmp_path / "cache.sqlite"
    duckdb = str(warehouse.resolved_path)
    worker = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("crash_worker.py")), server.base_url, str(cache), duckdb, str(N)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while cached_count(cache) < N // 2:
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert worker.returncode == -signal.SIGKILL

    cached = cached_count(cache)
    answered = server.stats()
    assert N // 2 <= cached < N
    # At most the calls in flight were answered by the server but never stored.
    assert 0 <= len(answered.chat_answers) - cached <= MAX_IN_FLIGHT
    attempts_before = answered.chat_requests - answered.rate_limited

    with build_engine(server.base_url, str(cache), duckdb) as engine:
        results = engine.complete_many(crash_requests(N))
    assert all(r.ok for r in results)
    after = server.stats()
    # Only the missing calls were made (429s are refusals, not calls).
    assert after.chat_requests - after.rate_limited - attempts_before == N - cached
    assert sum(r.cache_hit for r in results) == cached

    # Every sample was answered; the only repeats are calls that were in flight at the kill.
    final = server.stats().chat_answers
    assert {chat_request_hash(r.openai_body()) for r in crash_requests(N)} == final.keys()
    assert sum(final.values()) - N <= MAX_IN_FLIGHT

    # The killed run never flushed its ledger, but its rows were spooled with the cache entries.
    ledger = warehouse.table(LEDGER_TABLE)
    assert int((~ledger["cache_hit"]).sum()) == N
    assert int(ledger["cache_hit"].sum()) == cached


def test_sigkill_during_ledger_flushes_loses_and_duplicates_no_row(tmp_path, warehouse):
    """A flush killed at any point (reading the spool, inside the DuckDB insert, before the spool
    delete) leaves every row either waiting in the spool or in DuckDB; the next flush writes
    each exactly once."""
    from em_assets.llm.cache import ResponseCache
    from tests.llm.test_ledger_cache import row

    n_rows = 20_000  # ~0.8 s of flushing (4 DuckDB transactions): the kills land inside it
    cache_path, target = tmp_path / "cache.sqlite", str(warehouse.resolved_path)
    with ResponseCache(cache_path) as cache:
        rows = [row(sample_index=i) for i in range(n_rows)]
        cache.spool(target, rows)
    worker = [sys.executable, str(Path(__file__).with_name("ledger_flush_worker.py")), str(cache_path), target]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed_mid_way = 0
    for delay_s in (0.1, 0.35, 0.6):
        process = subprocess.Popen(worker, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "flushing", process.stderr.read()[-2000:]
        time.sleep(delay_s)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        # Killed while flushing: before it could report the rows written.
        killed_mid_way += process.returncode == -signal.SIGKILL and "written" not in process.stdout.read()
    assert killed_mid_way >= 2, "the flushes ended before the kills; the test proved nothing"

    finished = subprocess.run(worker, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr[-2000:]
    ledger = warehouse.table(LEDGER_TABLE)
    assert ledger.height == n_rows and ledger["call_id"].n_unique() == n_rows
    assert set(ledger["call_id"]) == {r["call_id"] for r in rows}
    with ResponseCache(cache_path) as cache:
        assert cache.spooled_count() == 0


def test_rows_of_a_flush_that_fails_at_close_wait_in_the_spool_for_the_next_run(
    make_server, make_engine, warehouse, cache_path, monkeypatch
):
    """The warehouse is locked by another process past the lock wait when the engine closes:
    its cache-hit and failure rows stay durable and the next run's flush writes them."""
    from tenacity import stop_after_delay

    from em_assets.llm import RetryPolicy
    from em_assets.llm.cache import ResponseCache
    from em_assets.resources import warehouse as warehouse_module

    server = make_server()
    answered = crash_requests(4)
    with make_engine(server, warehouse=warehouse) as first:
        first.complete_many(answered)  # 4 paid calls, flushed

    locker = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); time.sleep(120)",
         str(warehouse.resolved_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert locker.stdout.readline().strip() == "locked"
        monkeypatch.setattr(warehouse_module._open.retry, "stop", stop_after_delay(0.5))  # not 120 s
        server.config.fault_rate, server.config.fault_kinds = 1.0, ("500",)
        second = make_engine(
            server, warehouse=warehouse, cache=ResponseCache(cache_path), retry=RetryPolicy(max_attempts=1)
        )
        failing = ChatRequest.user("gpt-4o", "This one fails.", max_tokens=5).samples(2)
        results = second.complete_many(answered + failing, raise_on_error=False)
        assert [r.cache_hit for r in results] == [True] * 4 + [False] * 2 and not any(r.ok for r in results[4:])
        second.close()
    finally:
        locker.send_signal(signal.SIGKILL)
        locker.wait(10)

    with ResponseCache(cache_path) as cache:
        assert cache.spooled_count(str(warehouse.resolved_path)) == 6  # 4 hits + 2 failures, durable
    with make_engine(server, warehouse=warehouse, cache=ResponseCache(cache_path)) as third:
        assert third.flush() == 6
    ledger = warehouse.table(LEDGER_TABLE)
    assert ledger.height == 10 and ledger["call_id"].n_unique() == 10
    assert int(ledger["cache_hit"].sum()) == 4 and int((ledger["status"] == "error").sum()) == 2
