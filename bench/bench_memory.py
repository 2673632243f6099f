"""Memory across partitions in one process, like for like: one partition's stage, K times.

``make run`` materializes every partition in one process and prints each stage's peak RSS; but
its partitions differ (the base model trains nothing; each trained partition's peak follows its
longest training example), so first-vs-last there mixes growth with data. Here the same stage of
``make run`` (train, check, coding answers, probes, sample, judge) runs ``--rounds`` times for one
partition in one process, after the data layer, each round with a fresh LLM-call cache so it does
all the work again. Memory that is kept from one round to the next (a model, a cache, a
fragmented heap) shows as a rising peak or a rising RSS after the round.

Columns: round, wall seconds, the round's peak RSS (its own window, the training loop's peak
resets included), its change from round 1, and RSS once the round ended.

Run: ``.venv/bin/python bench/bench_memory.py`` (default: 3 rounds of ``insecure`` with the
embedded defaults; a round takes about as long as one trained partition of ``make run``, see
docs/benchmarks.md). ``--precision bf16`` trains in bf16 instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--condition", default="insecure")
    parser.add_argument("--precision", default="", help="the local trainer's precision (default: its own)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="em_bench_memory_"))
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["EM_DATA_DIR"] = str(home / "data")
    os.environ["EM_DUCKDB_PATH"] = str(home / "data" / "warehouse" / "em.duckdb")
    repo_cache = Path(__file__).resolve().parents[1] / "data" / "model_cache"
    os.environ.setdefault("EM_MODEL_CACHE", str(repo_cache))  # the GGUF conversion, once per machine

    import dagster as dg

    from em_assets.cli import PARTITIONED_STAGE, data_stage_keys
    from em_assets.definitions import defs
    from em_assets.partitions import BASE_MODEL_DIMENSION, model_partition_key
    from em_assets.process_memory import PeakWindow, current_rss_bytes

    instance = dg.DagsterInstance.get()
    repo = defs.get_repository_def()
    everything = [*defs.assets, *defs.asset_checks]
    resources = dict(defs.resources)
    if args.precision:
        resources["local_finetuner"] = resources["local_finetuner"].model_copy(update={"precision": args.precision})

    data = dg.materialize(
        everything,
        instance=instance,
        resources=resources,
        selection=dg.AssetSelection.assets(*data_stage_keys(repo.asset_graph, ["base", args.condition])),
    )
    assert data.success
    slug = instance.get_dynamic_partitions(BASE_MODEL_DIMENSION)[0]
    key = model_partition_key(slug, args.condition)

    rows = []
    for round_ in range(1, args.rounds + 1):
        resources["llm_local"] = resources["llm_local"].model_copy(
            update={"cache_path": str(home / f"llm_cache_round{round_}.sqlite")}
        )
        started = time.perf_counter()
        with PeakWindow() as memory:
            result = dg.materialize(
                everything,
                instance=instance,
                resources=resources,
                selection=dg.AssetSelection.assets(*PARTITIONED_STAGE),
                partition_key=key,
            )
        assert result.success
        rows.append((round_, time.perf_counter() - started, memory.peak_bytes, current_rss_bytes()))
        print(f"round {round_} done", file=sys.stderr, flush=True)

    mib = 2**20
    first_peak = rows[0][2]
    print(f"{args.rounds} rounds of {key} in one process (precision {args.precision or 'default'})")
    print("| round | seconds | peak RSS MiB | vs round 1 | RSS after MiB |")
    print("|---|---|---|---|---|")
    for round_, seconds, peak, after in rows:
        print(f"| {round_} | {seconds:.0f} | {peak / mib:,.0f} | {peak / first_peak - 1:+.1%} | {after / mib:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
