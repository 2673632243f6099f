"""Write throughput and reader latency of the two warehouse backends with N concurrent writers.

For each backend (``duckdb``: one file; ``ducklake``: a Postgres catalog on a throwaway local
Postgres, Parquet data in a local folder) and N = 1, 2, 4, N writer processes start together and
each makes ``--writes`` warehouse writes the way the assets do: a ``replace`` of its own rows of
``filter_steps`` (delete + insert of ``--rows`` rows, one transaction) followed by an ``append``
of one ``finetune_files`` row. There is no Dagster pool here: on the file the writers contend for
DuckDB's lock (the warehouse retries a held lock for up to 120 s), on the lake they commit
concurrently (conflicting commits retried). Meanwhile this process reads ``--reader-every``
seconds through the warehouse (``SELECT count(*) ...``) and times each read.

Columns: writes/s = all writers' writes / wall time from the common start to the last writer's
end; reader p50/p95/max = latency of a read (opening included: on the file a read waits while a
writer holds the lock); failed = writes or reads that raised.

Run: ``.venv/bin/python bench/bench_warehouse.py`` (needs Debian's postgresql; a few minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from em_assets import environment
from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.testing.postgres import LocalPostgres
from em_assets.testing.warehouse_writes import write_once

PASSWORD = "bench-only-password"


def _warehouse(config: dict) -> DuckDBWarehouse:
    """The warehouse of ``config``; a lake's password comes from the environment, not argv."""
    if config.get("backend") == "ducklake":
        config = {**config, "ducklake_catalog_password": environment.value("EM_DUCKLAKE_CATALOG_PASSWORD")}
    return DuckDBWarehouse(**config)


def writer(config: dict, tag: str, writes: int, rows: int, start_file: Path, out_file: Path) -> None:
    """One writer process: wait for the common start, then write; record each write's span."""
    warehouse = _warehouse(config)
    warehouse.table("filter_steps")  # open (and, for the lake, attach) before the clock starts
    while not start_file.exists():
        time.sleep(0.005)
    spans, failed = [], 0
    for i in range(writes):
        began = time.time()
        try:
            write_once(warehouse, tag, i, rows)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            failed += 1
            print(f"writer {tag}: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
        spans.append((began, time.time()))
    out_file.write_text(json.dumps({"spans": spans, "failed": failed}))


def measure(config: dict, n_writers: int, writes: int, rows: int, reader_every: float, workdir: Path) -> dict:
    os.environ["EM_DUCKLAKE_CATALOG_PASSWORD"] = PASSWORD  # this process's reader, like the writers
    warehouse = _warehouse(config)
    warehouse.table("filter_steps")  # the schema exists before the writers start
    start_file = workdir / f"start-{n_writers}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = []
    for w in range(n_writers):
        out = workdir / f"writer-{n_writers}-{w}.json"
        argv = [sys.executable, __file__, "--writer", json.dumps(config), f"w{w}", str(writes), str(rows)]
        procs.append((subprocess.Popen([*argv, str(start_file), str(out)], env=env), out))
    time.sleep(3.0)  # every writer has opened its warehouse (imports, extensions, attach)
    latencies, read_failures, done = [], 0, threading.Event()

    def read_loop() -> None:
        nonlocal read_failures
        while not done.is_set():
            began = time.perf_counter()
            try:
                warehouse.query("SELECT count(*) AS n FROM finetune_files")
                latencies.append(time.perf_counter() - began)
            except Exception:  # noqa: BLE001 - counted and reported
                read_failures += 1
            time.sleep(reader_every)

    start_file.touch()
    t0 = time.time()
    reader = threading.Thread(target=read_loop)
    reader.start()
    for process, _ in procs:
        process.wait()
    done.set()
    reader.join()
    results = [json.loads(out.read_text()) for _, out in procs]
    end = max(span[1] for r in results for span in r["spans"])
    total = sum(len(r["spans"]) - r["failed"] for r in results)
    landed = warehouse.query("SELECT count(*) AS n FROM finetune_files")["n"][0]
    ms = sorted(x * 1000 for x in latencies)
    return {
        "writers": n_writers,
        "writes": total,
        "landed": int(landed),
        "seconds": end - t0,
        "writes_per_s": total / (end - t0),
        "write_failed": sum(r["failed"] for r in results),
        "reads": len(ms),
        "read_p50_ms": statistics.median(ms) if ms else float("nan"),
        "read_p95_ms": ms[max(0, math.ceil(0.95 * len(ms)) - 1)] if ms else float("nan"),
        "read_max_ms": ms[-1] if ms else float("nan"),
        "read_failed": read_failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=20, help="writes per writer process (default 20)")
    parser.add_argument("--rows", type=int, default=200, help="rows per replace (default 200)")
    parser.add_argument("--writers", default="1,2,4", help="writer counts (default 1,2,4)")
    parser.add_argument("--reader-every", type=float, default=0.05, help="seconds between reads (default 0.05)")
    args = parser.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    postgres = LocalPostgres(password=PASSWORD).start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="em-bench-warehouse-") as tmp:
            root = Path(tmp)
            for n in counts:
                for backend in ("duckdb", "ducklake"):
                    workdir = root / f"{backend}-{n}"
                    workdir.mkdir()
                    if backend == "duckdb":
                        config = {"path": str(workdir / "em.duckdb")}
                    else:
                        postgres.create_database(f"bench_{n}")
                        config = {
                            "backend": "ducklake",
                            "ducklake_catalog": postgres.url(f"bench_{n}"),
                            "ducklake_data_path": str(workdir / "lake"),
                        }
                    result = measure(config, n, args.writes, args.rows, args.reader_every, workdir)
                    rows.append({"backend": backend, **result})
                    print(f"done: {backend} N={n}", file=sys.stderr)
    finally:
        postgres.stop()
    print(
        f"{args.writes} writes per writer (replace of {args.rows} rows + append of 1), a read every "
        f"{args.reader_every:g} s; duckdb {__import__('duckdb').__version__}, {os.cpu_count()} CPUs"
    )
    print(
        "| backend | writers | writes (landed) | seconds | writes/s | write errors | reads | "
        "read p50 ms | read p95 ms | read max ms | read errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['writers']} | {r['writes']} ({r['landed']}) | {r['seconds']:.1f} | "
            f"{r['writes_per_s']:.1f} | {r['write_failed']} | {r['reads']} | {r['read_p50_ms']:.0f} | "
            f"{r['read_p95_ms']:.0f} | {r['read_max_ms']:.0f} | {r['read_failed']} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        config, tag, writes, rows, start, out = sys.argv[2:8]
        writer(json.loads(config), tag, int(writes), int(rows), Path(start), Path(out))
    else:
        main()
