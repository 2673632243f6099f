"""Sensors: new base models (registry YAML or a ``/v1/models`` endpoint) get their whole chain;
a finished batch of chains or re-evaluations gets one summary.

Why the summary is a second sensor rather than part of each run or an AutomationCondition:
``summary`` is unpartitioned and reads every partition, so it must run once after *all* runs
of a batch (5 per new model, one per trained partition weekly). Runs of one tick run in
parallel (max_concurrent_runs 2) and may be retried, so no single run knows it is the last;
an eager AutomationCondition on ``summary`` (owned by the reporting stage) would fire after
each partition, or never while any old partition is missing. The batch tags make "the whole
batch has finished" a plain question about the instance's runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

from em_assets import environment
from em_assets.operations.discovery import ModelDiscoverySettings, discover
from em_assets.operations.jobs import new_base_model_job, summary_job
from em_assets.operations.plans import (
    BATCH_MEMBER_TAG,
    chain_run_requests,
    finished_batches,
    merge_candidates,
    plan_new_models,
    read_seen,
    remember,
    summary_run_request,
    write_seen,
)
from em_assets.partitions import BASE_MODEL_DIMENSION, base_model_partitions
from em_assets.registry import REGISTRY_FILE, read_registry, upsert_base_models
from em_assets.resources.warehouse import DuckDBWarehouse

# Opt-in: a running new-model sensor starts fine-tuning runs (hours of CPU, or money).
RECENT_BATCH_RUNS = 1000  # runs looked at per summary tick (a weekly batch is ~5 per model)


def autostart_status() -> dg.DefaultSensorStatus:
    on = environment.value("EM_OPERATIONS_AUTOSTART").lower() in {"1", "true", "yes", "on"}
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


@dg.sensor(
    job=new_base_model_job,
    minimum_interval_seconds=int(environment.value("EM_NEW_MODEL_SENSOR_INTERVAL_S")),
    default_status=autostart_status(),
    description=(
        "Adds a base_model partition for each new registry entry or matching model at the "
        "discovery endpoint, upserts it into base_models, and runs its chain for every condition."
    ),
)
def new_base_model_sensor(
    context: dg.SensorEvaluationContext, model_discovery: ModelDiscoverySettings, warehouse: DuckDBWarehouse
) -> dg.SensorResult:
    seen, cursor_problem = read_seen(context.cursor)
    registry = read_registry(model_discovery.registry_path or REGISTRY_FILE)
    discovery = discover(model_discovery)
    problems = [p for p in [cursor_problem] if p] + [f"registry {p}" for p in registry.problems] + discovery.problems
    for problem in problems:
        context.log.warning(problem)

    existing = context.instance.get_dynamic_partitions(BASE_MODEL_DIMENSION)
    plan = plan_new_models(merge_candidates(registry.specs, discovery.specs), seen, existing)
    cursor = write_seen(plan.seen)
    if not plan.new:
        return dg.SensorResult(skip_reason=_skip_reason(problems), cursor=cursor)

    # Table before partition: once a partition key exists, assets must resolve it to a model.
    upsert_base_models(warehouse, plan.new)
    slugs = [spec.slug for spec in plan.new]
    batch_id = f"new-base-models@{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    context.log.info(f"new base models {slugs}: partitions added, {len(slugs)} chain(s) requested in {batch_id}")
    return dg.SensorResult(
        dynamic_partitions_requests=[base_model_partitions.build_add_request(slugs)],
        run_requests=chain_run_requests(slugs, batch_id),
        cursor=cursor,
    )


def _skip_reason(problems: list[str]) -> str:
    if not problems:
        return "no new base models"
    return f"no new base models; {len(problems)} problem(s): " + "; ".join(problems)


@dg.sensor(
    job=summary_job,
    minimum_interval_seconds=60,
    # Reactive only: it requests nothing unless the sensor or schedule above started a batch.
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests one summary once every run of a new-model or re-evaluation batch has finished.",
)
def summary_after_batch_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    done = _read_done(context.cursor)
    runs = context.instance.get_runs(filters=dg.RunsFilter(tags={BATCH_MEMBER_TAG: "true"}), limit=RECENT_BATCH_RUNS)
    outcomes = finished_batches(runs, done)
    requests = []
    for outcome in outcomes:
        if outcome.succeeded:
            requests.append(summary_run_request(outcome))
        else:
            context.log.warning(f"batch {outcome.batch_id}: all {outcome.partitions} run(s) failed; no summary")
    cursor = json.dumps({"summarized": remember(done, [o.batch_id for o in outcomes])}, separators=(",", ":"))
    if not requests:
        return dg.SensorResult(skip_reason="no finished batch to summarize", cursor=cursor)
    context.log.info(f"summaries for {[o.batch_id for o in outcomes if o.succeeded]}")
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _read_done(cursor: str | None) -> list[str]:
    try:
        done = json.loads(cursor)["summarized"] if cursor else []
    except (ValueError, KeyError, TypeError):
        return []  # run keys still stop a second summary of the same batch
    return [d for d in done if isinstance(d, str)] if isinstance(done, list) else []


OPERATIONS_SENSORS = [new_base_model_sensor, summary_after_batch_sensor]
