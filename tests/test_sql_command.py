"""``python -m em_assets sql``: queries the warehouse while another process keeps writing it,
and neither side fails (issue 12, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb

from tests.conftest import REPO

# A writer as a run's steps are: one write connection after another, each held a while
# (schema, an insert, some work) with only a moment between them. It writes until the test
# drops a stop file, so the queries below always meet it however slowly they start.
WRITER = """
import pathlib, sys, time
from em_assets.resources.warehouse import DuckDBWarehouse
warehouse, stop = DuckDBWarehouse(path=sys.argv[1]), pathlib.Path(sys.argv[2])
i = 0
while not stop.exists() and i < 2000:
    with warehouse.connect() as con:
        con.execute("CREATE TABLE IF NOT EXISTS probe_writes (i INTEGER)")
        con.execute("INSERT INTO probe_writes VALUES (?)", [i])
        if i == 0:
            print("writing", flush=True)  # and holding the file for a while
            time.sleep(0.5)
        time.sleep(0.05)
    i += 1
    print(i, flush=True)
"""


def test_queries_during_writes_are_answered_and_the_writer_never_fails(tmp_path):
    path, stop = tmp_path / "em.duckdb", tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": str(REPO), "EM_DUCKDB_PATH": str(path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(stop)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "writing", writer.stderr.read()[-2000:]
        # Positive control: a plain read-only open (the README's old command) is refused now.
        try:
            duckdb.connect(str(path), read_only=True).close()
            raise AssertionError("no write contention: the test would prove nothing")
        except duckdb.IOException as exc:
            assert "lock" in str(exc).lower()
        queries = [
            subprocess.Popen(
                [sys.executable, "-m", "em_assets", "sql", "SELECT count(*) AS n FROM probe_writes", "--csv"],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        answers = []
        for query in queries:
            out, err = query.communicate(timeout=120)
            assert query.returncode == 0, err
            answers.append(int(out.splitlines()[1]))
        assert min(answers) >= 1
        # The writer was busy for the whole life of both queries; it must go on past them.
        written = 0
        while written < max(answers) + 2:
            line = writer.stdout.readline()
            assert line, f"the writer stopped early: {writer.stderr.read()[-2000:]}"
            written = int(line)
        stop.touch()
        for line in writer.stdout:  # the writes it finished before it saw the stop file
            written = int(line)
        assert writer.wait(120) == 0, writer.stderr.read()[-2000:]
    finally:
        if writer.poll() is None:
            writer.kill()
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM probe_writes").fetchone()[0] == written  # every write landed


def test_a_shipped_query_runs_by_name_with_its_parameters_and_bad_ones_are_named(tmp_path):
    path = tmp_path / "em.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO), "EM_DUCKDB_PATH": str(path)}

    def sql(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "em_assets", "sql", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    missing = sql("llm_cost_by_asset")
    assert missing.returncode == 2 and f"{path}: no warehouse file yet" in missing.stderr
    from em_assets.resources.warehouse import DuckDBWarehouse

    DuckDBWarehouse(path=str(path)).query("SELECT 1")  # the schema, no rows
    assert sql("llm_cost_by_asset", "--param", "run_id=abc", "--csv").stdout.startswith("asset,partition_key,calls")
    unknown = sql("llm_cost_by_asset", "--param", "run=abc")
    assert unknown.returncode == 2 and "--param run: the query has no $run (it takes: ['run_id'])" in unknown.stderr
    nosuch = sql("no_such_query")
    assert nosuch.returncode == 2 and "'no_such_query' is neither a query name" in nosuch.stderr
