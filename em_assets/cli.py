"""``python -m em_assets run``: materialize the whole graph on the local instance and summarize.

Runs go through the instance in DAGSTER_HOME (the Makefile points it at the repository), so
every run shows up in the web UI afterwards with its logs, metadata and check results.
"""

from __future__ import annotations

import argparse
import sys
import time

import dagster as dg


def _instance() -> dg.DagsterInstance:
    import os

    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    print("DAGSTER_HOME is not set: using a temporary instance (runs will not show in the UI)")
    return dg.DagsterInstance.ephemeral()


def run(argv: list[str]) -> int:
    from em_assets.definitions import defs
    from em_assets.paths import data_dir, default_duckdb_path

    parser = argparse.ArgumentParser(prog="python -m em_assets run")
    parser.add_argument("--select", default="*", help="asset selection (Dagster syntax), default: everything")
    args = parser.parse_args(argv)

    instance = _instance()
    repo = defs.get_repository_def()
    selection = (
        dg.AssetSelection.from_string(args.select) if args.select != "*" else dg.AssetSelection.all()
    )
    # Materialize every selected asset and its checks in one run: one row in the UI's run list,
    # with per-step timings.
    started = time.perf_counter()
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        instance=instance,
        resources=repo.get_top_level_resources(),
        selection=selection,
        raise_on_error=False,
        tags={"em_assets/entrypoint": "cli"},
    )
    elapsed = time.perf_counter() - started
    print()
    print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} in {elapsed:.1f} s")
    stats = instance.get_run_step_stats(result.run_id)
    width = max((len(s.step_key) for s in stats), default=10)
    for s in sorted(stats, key=lambda s: s.start_time or 0):
        seconds = (s.end_time or time.time()) - (s.start_time or time.time())
        print(f"  {s.step_key:<{width}}  {s.status.value if s.status else '?':<8} {seconds:7.1f} s")
    failed_checks = [
        e for e in result.get_asset_check_evaluations() if not e.passed
    ]
    for evaluation in failed_checks:
        print(f"  CHECK FAILED {evaluation.asset_key.to_user_string()}:{evaluation.check_name} {evaluation.description or ''}")
    print(f"DuckDB warehouse: {default_duckdb_path()}")
    print(f"Artifacts (datasets, models, reports): {data_dir()}")
    print("Open the UI with `make ui` (http://127.0.0.1:3000) to browse runs, metadata and lineage.")
    return 0 if result.success and not failed_checks else 1


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run"}:
        print("usage: python -m em_assets run [--select SELECTION]")
        return 2
    return run(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
