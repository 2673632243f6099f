"""Concurrent runs on a DuckLake: writers in separate processes without the one-writer pool,
and a reader holding its connection open while a writer commits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from em_assets.pools import DUCKDB_WRITER_POOL, warehouse_writer_pool
from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[2]
WRITES = 12


def _env(lake, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EM_DATA_DIR": str(tmp_path / "data"),
        "EM_WAREHOUSE_BACKEND": "ducklake",
        "EM_DUCKLAKE_CATALOG": lake.ducklake_catalog,
        "EM_DUCKLAKE_CATALOG_PASSWORD": PASSWORD,
        "EM_DUCKLAKE_DATA_PATH": lake.ducklake_data_path,
    }


def _start(tag: str, lake, tmp_path: Path, start: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / f"{tag}.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.lake.writer_run", tag, str(WRITES), str(start), str(out)],
        cwd=REPO,
        env=_env(lake, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, out


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-4000:]
    assert PASSWORD not in output  # nothing the run logs shows the catalog password
    return output


def test_the_writer_pool_is_the_file_backends_only(tmp_path):
    assert warehouse_writer_pool("duckdb") == DUCKDB_WRITER_POOL
    assert warehouse_writer_pool("ducklake") is None
    # The code location loaded with the lake backend puts no step in the writer pool.
    script = (
        "from em_assets.definitions import defs\n"
        "graph = defs.get_repository_def().asset_graph\n"
        "print(sorted(set().union(*[graph.get(k).pools or set() for k in graph.get_all_asset_keys()])))\n"
    )
    env = {**os.environ, "EM_WAREHOUSE_BACKEND": "ducklake", "EM_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['local_training']"  # tests/test_definitions.py: the file's


def test_two_runs_in_separate_processes_write_at_once_and_both_land(lake, tmp_path):
    lake.table("filter_steps")  # the schema exists before the runs race
    start = tmp_path / "start"
    runs = [_start(tag, lake, tmp_path, start) for tag in ("a", "b")]
    time.sleep(0.5)
    start.touch()
    for process, _ in runs:
        _finish(process)
    spans = [json.loads(out.read_text()) for _, out in runs]
    # The two runs' writes overlapped in time: neither waited for the other to finish.
    (a_first, a_last), (b_first, b_last) = ((s[0][0], s[-1][1]) for s in spans)
    assert a_first < b_last and b_first < a_last
    steps = lake.table("filter_steps")
    for tag in ("a", "b"):  # each run's last replace holds its WRITES rows, none lost or doubled
        assert sorted(steps.filter(steps["step"] == tag)["step_order"].to_list()) == list(range(WRITES))
    files = lake.table("finetune_files")
    assert files.height == 2 * WRITES and files["content_sha256"].n_unique() == 2 * WRITES


def test_a_reader_holding_its_connection_never_makes_a_writer_fail(lake, tmp_path):
    lake.table("filter_steps")
    start = tmp_path / "start"
    start.touch()
    with lake.connect(read_only=True) as reader:
        reader.execute("BEGIN TRANSACTION")
        before = reader.execute("SELECT count(*) FROM finetune_files").fetchone()[0]
        began = time.monotonic()
        process, out = _start("w", lake, tmp_path, start)
        _finish(process)
        took = time.monotonic() - began
        # The reader, still in its transaction, sees its snapshot; the writer did not wait for it.
        assert reader.execute("SELECT count(*) FROM finetune_files").fetchone()[0] == before == 0
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM finetune_files").fetchone()[0] == WRITES
    assert len(json.loads(out.read_text())) == WRITES
    assert took < 120, took  # far below the file backend's 120 s lock wait
