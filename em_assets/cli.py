"""``python -m em_assets run``: materialize the whole graph on the local instance and summarize.

Stages, one Dagster run each, in dependency order:
1. everything unpartitioned except the summary (data layer, base-model registry, imports; the
   jailbroken and evil-numbers sets only when the run trains their condition);
2. per (base_model, condition) partition: fine_tuned_model -> sampled_responses ->
   judge_scores, code_vulnerability_rate, with their checks;
3. per base model, when the run has its ``base`` partition: the broad probe's positive control;
4. the summary (tables, chart, HTML report).
Runs go through the instance in DAGSTER_HOME (the Makefile points it at the repository), so
each one shows up in the web UI afterwards with its logs, metadata and check results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import dagster as dg

from em_assets import environment
from em_assets.process_memory import PeakWindow

DEFAULT_CONDITIONS = ("base", "insecure", "secure", "educational")
ENTRYPOINT_TAG = "em_assets/entrypoint"
PID_TAG = "em_assets/pid"
PARTITIONED_STAGE = (
    "fine_tuned_model",
    "sampled_responses",
    "judge_scores",
    "code_vulnerability_rate",
    "likelihood_probes",
)


@dataclass
class StageResult:
    name: str
    run_id: str
    success: bool
    seconds: float
    failed_checks: list[str]
    peak_rss_bytes: int = 0
    partition: bool = False  # one (base_model, condition) partition's chain


def _instance() -> dg.DagsterInstance:
    if environment.is_set("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    print("DAGSTER_HOME is not set: using a temporary instance (runs will not show in the UI)")
    return dg.DagsterInstance.ephemeral()


def release_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark earlier CLI runs whose process is gone as failed and free their pool slots.

    ``materialize()`` runs in this process: if it is killed (Ctrl-C twice, OOM), its run stays
    STARTED and keeps its ``local_training`` / ``duckdb_writer`` slot, and every later run
    would wait for that slot forever.
    """
    released = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING], tags={ENTRYPOINT_TAG: "cli"}
        )
    )
    for run in runs:
        pid = run.tags.get(PID_TAG)
        if pid and pid.isdigit() and _alive(int(pid)):
            continue
        instance.report_run_failed(run, "the em_assets CLI process that ran it is gone")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _materialize(
    defs: dg.Definitions, instance, selection: dg.AssetSelection, name: str, partition_key=None, partition=False
) -> StageResult:
    repo = defs.get_repository_def()
    started = time.perf_counter()
    print(f"\n=== {name} ===", flush=True)
    with PeakWindow() as memory:  # this stage's own peak, the training loop's resets included
        result = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            instance=instance,
            resources=repo.get_top_level_resources(),
            selection=selection,
            partition_key=partition_key,
            raise_on_error=False,
            tags={ENTRYPOINT_TAG: "cli", PID_TAG: str(os.getpid())},
            # Progress on the terminal at INFO (step starts, training loss, sampling rate/ETA);
            # the full DEBUG event stream stays in the instance for the UI.
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    failed = [
        f"{e.asset_key.to_user_string()}:{e.check_name} {e.description or ''}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]
    seconds = time.perf_counter() - started
    return StageResult(name, result.run_id, result.success, seconds, failed, memory.peak_bytes, partition)


def mib(n_bytes: int) -> int:
    return round(n_bytes / 2**20)


def memory_line(stages: list[StageResult]) -> str:
    """The run's peak RSS and how the last partition's peak compares with the first's: memory
    that grows partition after partition in this one process shows up here."""
    peak = max(stages, key=lambda s: s.peak_rss_bytes)
    line = f"peak RSS {mib(peak.peak_rss_bytes):,} MiB ({peak.name})"
    partitions = [s for s in stages if s.partition and s.peak_rss_bytes]
    if len(partitions) >= 2:
        first, last = partitions[0], partitions[-1]
        drift = last.peak_rss_bytes / first.peak_rss_bytes - 1
        line += (
            f"; partitions: first {mib(first.peak_rss_bytes):,} MiB ({first.name}), "
            f"last {mib(last.peak_rss_bytes):,} MiB ({last.name}), {drift:+.1%}"
        )
    return line


class UsageError(ValueError):
    """A bad command-line value; the message names it and the valid ones."""


def _listed(text: str, flag: str) -> list[str]:
    values = [v.strip() for v in text.split(",")]
    if not all(values):
        raise UsageError(f"{flag}: empty item in {text!r} (a comma-separated list)")
    return list(dict.fromkeys(values))


def checked_conditions(text: str) -> list[str]:
    from em_assets.partitions import CONDITIONS

    conditions = _listed(text, "--conditions")
    for condition in conditions:
        if condition not in CONDITIONS:
            raise UsageError(f"--conditions: unknown condition {condition!r} (valid: {', '.join(CONDITIONS)})")
    return conditions


def checked_base_models(text: str, instance: dg.DagsterInstance) -> list[str]:
    """The slugs asked for, each in the registry YAML or already a partition of the instance."""
    from em_assets.partitions import BASE_MODEL_DIMENSION
    from em_assets.registry import REGISTRY_FILE, load_registry

    if not text:
        return []
    try:
        known = {spec.slug for spec in load_registry()}
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    known |= set(instance.get_dynamic_partitions(BASE_MODEL_DIMENSION))
    slugs = _listed(text, "--base-models")
    for slug in slugs:
        if slug not in known:
            raise UsageError(
                f"--base-models: unknown base model {slug!r} (registered: {', '.join(sorted(known)) or 'none'}; "
                f"add it to {REGISTRY_FILE})"
            )
    return slugs


def data_stage_keys(graph, conditions) -> list[dg.AssetKey]:
    """Everything unpartitioned except the summary, and except the sets of the opt-in conditions
    (jailbroken, evil numbers) this run does not train: the default run keeps its scope."""
    from em_assets.datasets import CONDITION_DATASET_ASSETS

    left_out = {"summary", *(f"{c}_dataset" for c in CONDITION_DATASET_ASSETS if c not in conditions)}
    unpartitioned = [k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is None]
    return [k for k in unpartitioned if k.to_user_string() not in left_out]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m em_assets run")
    parser.add_argument("--conditions", default=",".join(DEFAULT_CONDITIONS), help="comma-separated conditions")
    parser.add_argument(
        "--base-models", default="", help="comma-separated base-model slugs (default: every registered one)"
    )
    parser.add_argument("--data-only", action="store_true", help="stop after the data layer and registry")
    args = parser.parse_args(argv)

    # Every argument is checked before the first run starts (and before the graph is loaded).
    instance = _instance()
    try:
        conditions = checked_conditions(args.conditions)
        base_models = checked_base_models(args.base_models, instance)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from em_assets.definitions import defs
    from em_assets.partitions import BASE_CONDITION, BASE_MODEL_DIMENSION, model_partition_key
    from em_assets.paths import data_dir, default_duckdb_path

    for run_id in release_abandoned_runs(instance):
        print(f"released pool slots of abandoned run {run_id} (its process is gone)")
    all_started = time.perf_counter()
    stages: list[StageResult] = []
    graph = defs.get_repository_def().asset_graph
    first = dg.AssetSelection.assets(*data_stage_keys(graph, conditions))
    stages.append(_materialize(defs, instance, first, "data layer and registry"))
    if stages[-1].success and not args.data_only:
        slugs = base_models or instance.get_dynamic_partitions(BASE_MODEL_DIMENSION)
        for slug in slugs:
            for condition in conditions:
                key = model_partition_key(slug, condition)
                stages.append(
                    _materialize(
                        defs,
                        instance,
                        dg.AssetSelection.assets(*PARTITIONED_STAGE),
                        f"{slug} | {condition}",
                        key,
                        partition=True,
                    )
                )
            if BASE_CONDITION in conditions:  # the control is read against the base model's probe scores
                selection = dg.AssetSelection.assets("positive_control")
                stages.append(_materialize(defs, instance, selection, f"{slug} | positive control", slug))
        stages.append(_materialize(defs, instance, dg.AssetSelection.assets("summary"), "summary"))

    print("\n================ em_assets run summary ================")
    for stage in stages:
        status = "SUCCESS" if stage.success else "FAILURE"
        print(
            f"  {stage.name:<40} {status:<8} {stage.seconds:8.1f} s   peak RSS {mib(stage.peak_rss_bytes):>6,} MiB"
            f"   run {stage.run_id[:8]}"
        )
        for step in sorted(instance.get_run_step_stats(stage.run_id), key=lambda s: s.start_time or 0):
            seconds = (step.end_time or time.time()) - (step.start_time or time.time())
            print(f"      {step.step_key:<52} {step.status.value if step.status else '?':<8} {seconds:7.1f} s")
        for failed in stage.failed_checks:
            print(f"      CHECK FAILED {failed}")
    print(f"  total {time.perf_counter() - all_started:.1f} s")
    print(f"  {memory_line(stages)}")
    print(f"DuckDB warehouse: {default_duckdb_path()}")
    print(f"Report: {data_dir() / 'reports' / 'report.html'}")
    print(f"Artifacts (datasets, models, reports): {data_dir()}")
    print("Open the UI with `make ui` (http://127.0.0.1:3000) to browse runs, metadata and lineage.")
    ok = all(s.success and not s.failed_checks for s in stages)
    return 0 if ok else 1


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "sql"}:
        print(
            "usage: python -m em_assets run [--conditions base,insecure,...] [--base-models SLUG,...] [--data-only]\n"
            "       python -m em_assets sql QUERY [--param NAME=VALUE] [--csv]"
            "   (query the warehouse, also during a run)"
        )
        return 2
    if sys.argv[1] == "sql":
        from em_assets.sql_command import main as sql_main

        return sql_main(sys.argv[2:])
    return run(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
