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
