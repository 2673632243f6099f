"""What the sensors and the schedule decide, as plain functions of their inputs.

Runs come in *batches*: the chains a sensor tick starts for new base models, or one week's
re-evaluation. Every run of a batch carries the batch id and size in its tags, so
``summary_after_batch_sensor`` can request one ``summary`` once the whole batch has finished
(see ``sensors.py`` for why the summary is not part of the batch itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl

from em_assets.partitions import CONDITIONS, SENSOR_CONDITIONS, model_partition_key
from em_assets.registry import BaseModelSpec

TRIGGER_TAG = "em_assets/trigger"  # sensor | schedule
BATCH_TAG = "em_assets/batch"  # the batch id every run of one tick shares
BATCH_SIZE_TAG = "em_assets/batch_size"  # how many partitions the batch has
BASE_MODEL_TAG = "em_assets/base_model"
# Marks runs that belong to a batch, so one indexed tag query finds them all.
BATCH_MEMBER_TAG = "em_assets/summary_after_batch"
SUMMARIZES_TAG = "em_assets/summarizes"  # on a summary run: the batch it follows

# Dagster's own run tags (stable names; not exported from the top-level package).
PARTITION_TAG = "dagster/partition"
WILL_RETRY_TAG = "dagster/will_retry"

API_BACKENDS = frozenset({"openai"})
API_ENGINE_RESOURCE = "llm_api"


# ------------------------------------------------------------------------ new-model sensor
def read_seen(cursor: str | None) -> tuple[set[str], str | None]:
    """Slugs the sensor has handled, from its cursor; a problem when the cursor is unreadable
    (then the instance's existing partitions alone keep known models from being re-added)."""
    if not cursor:
        return set(), None
    try:
        data = json.loads(cursor)
        seen = data["seen"]
        if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
            raise TypeError("seen must be a list of strings")
    except (ValueError, KeyError, TypeError) as exc:
        return set(), f"cursor is not the sensor's JSON ({exc}); starting from the existing partitions"
    return set(seen), None


def write_seen(seen: Iterable[str]) -> str:
    return json.dumps({"seen": sorted(set(seen))}, separators=(",", ":"))


def merge_candidates(registry: Sequence[BaseModelSpec], discovered: Sequence[BaseModelSpec]) -> list[BaseModelSpec]:
    """Registry entries, then discovered models not already named by the registry (by slug):
    a model in the YAML keeps the backend and seeds the YAML gives it."""
    by_slug: dict[str, BaseModelSpec] = {}
    for spec in [*registry, *discovered]:
        by_slug.setdefault(spec.slug, spec)
    return list(by_slug.values())


@dataclass(frozen=True)
class NewModelPlan:
    new: list[BaseModelSpec]  # to upsert into base_models, add as partitions, and train
    seen: set[str]  # the cursor after this tick


def plan_new_models(
    candidates: Sequence[BaseModelSpec], seen: set[str], existing_partitions: Iterable[str]
) -> NewModelPlan:
    """New = neither handled by the sensor before nor already a partition. A partition that
    exists was registered by someone else (the ``base_model_registry`` asset, the CLI), who
    started its runs; one that was deleted to retire a model stays seen and is never re-added."""
    known = set(seen) | set(existing_partitions)
    new = [c for c in candidates if c.slug not in known]
    return NewModelPlan(new=new, seen=set(seen) | {c.slug for c in candidates})


def chain_run_requests(slugs: Sequence[str], batch_id: str) -> list[dg.RunRequest]:
    """One run per (new base model, condition but the opt-in ones): fine_tuned_model ->
    sampled_responses -> judge_scores, code_vulnerability_rate, in dependency order inside the run."""
    size = len(slugs) * len(SENSOR_CONDITIONS)
    return [
        dg.RunRequest(
            # Dagster refuses a second request with the same key from this sensor: a partition's
            # chain is started once even if the cursor were lost.
            run_key=f"new-base-model:{slug}|{condition}",
            partition_key=model_partition_key(slug, condition),
            tags=_batch_tags("sensor", batch_id, size, slug),
        )
        for slug in slugs
        for condition in SENSOR_CONDITIONS
    ]


# ---------------------------------------------------------------------- weekly schedule
@dataclass(frozen=True)
class ReevaluationTarget:
    base_model: str
    condition: str
    uses_api: bool  # the model is served by an API backend: sample through the Batch API


def reevaluation_targets(
    succeeded_models: pl.DataFrame, existing_partitions: Iterable[str]
) -> list[ReevaluationTarget]:
    """Every (base_model, condition) with a trained model whose base_model partition still
    exists. Partitions without a succeeded model are left out: there is nothing to sample."""
    existing = set(existing_partitions)
    if succeeded_models.is_empty():
        return []
    grouped = (
        succeeded_models.filter(pl.col("base_model").is_in(list(existing)))
        .group_by("base_model", "condition")
        .agg(pl.col("backend").is_in(list(API_BACKENDS)).any().alias("uses_api"))
    )
    order = {c: i for i, c in enumerate(CONDITIONS)}
    targets = [
        ReevaluationTarget(r["base_model"], r["condition"], r["uses_api"]) for r in grouped.iter_rows(named=True)
    ]
    return sorted((t for t in targets if t.condition in order), key=lambda t: (t.base_model, order[t.condition]))


def batch_api_run_config(configured_api_engine: Mapping[str, Any]) -> dict[str, Any]:
    """Run config switching the API engine (``llm_api``) to the OpenAI Batch API.

    ``configured_api_engine``: the resource's config as the code location sets it (EnvVars as
    ``{"env": NAME}``). Run config for a resource *replaces* its configured values (fields left
    out fall back to the class defaults: ``base_url`` would silently become api.openai.com), so
    the whole configuration is repeated with ``batch_mode`` turned on.
    """
    config = {**configured_api_engine, "batch_mode": True}
    return {"resources": {API_ENGINE_RESOURCE: {"config": config}}}


def reevaluation_run_requests(
    targets: Sequence[ReevaluationTarget], batch_id: str, api_run_config: Mapping[str, Any] | None = None
) -> list[dg.RunRequest]:
    """One run per target: sampled_responses -> judge_scores, code_vulnerability_rate (no
    retraining). API-served models run with ``api_run_config`` (``batch_api_run_config``)."""
    return [
        dg.RunRequest(
            run_key=f"{batch_id}:{t.base_model}|{t.condition}",
            partition_key=model_partition_key(t.base_model, t.condition),
            tags=_batch_tags("schedule", batch_id, len(targets), t.base_model),
            run_config=dict(api_run_config or {}) if t.uses_api else {},
        )
        for t in targets
    ]


def _batch_tags(trigger: str, batch_id: str, size: int, base_model: str) -> dict[str, str]:
    return {
        TRIGGER_TAG: trigger,
        BATCH_TAG: batch_id,
        BATCH_SIZE_TAG: str(size),
        BATCH_MEMBER_TAG: "true",
        BASE_MODEL_TAG: base_model,
    }


# --------------------------------------------------------------- summary after a batch
FINISHED = frozenset({dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED})


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: str
    partitions: int
    succeeded: int
    trigger: str


def finished_batches(runs: Iterable[dg.DagsterRun], done: Iterable[str]) -> list[BatchOutcome]:
    """Batches (not in ``done``) whose every partition has a finished latest run.

    ``runs``: newest first, as ``DagsterInstance.get_runs`` returns them. A batch is finished
    when runs for all ``batch_size`` partitions exist (the daemon submits a tick's requests one
    by one) and the latest run of each is finished and not about to be retried (Dagster tags a
    failed run that run_retries will re-execute; the retry carries the batch tags too)."""
    done = set(done)
    latest: dict[str, dict[str, dg.DagsterRun]] = {}
    sizes: dict[str, int] = {}
    for run in runs:
        batch = run.tags.get(BATCH_TAG)
        if not batch or batch in done or run.tags.get(BATCH_MEMBER_TAG) != "true":
            continue
        sizes.setdefault(batch, _int(run.tags.get(BATCH_SIZE_TAG), default=1))
        latest.setdefault(batch, {}).setdefault(run.tags.get(PARTITION_TAG, run.run_id), run)
    outcomes = []
    for batch, by_partition in latest.items():
        runs_now = list(by_partition.values())
        if len(runs_now) < sizes[batch] or not all(_settled(r) for r in runs_now):
            continue
        succeeded = sum(r.status == dg.DagsterRunStatus.SUCCESS for r in runs_now)
        outcomes.append(BatchOutcome(batch, len(runs_now), succeeded, runs_now[0].tags.get(TRIGGER_TAG, "")))
    return sorted(outcomes, key=lambda o: o.batch_id)


def _settled(run: dg.DagsterRun) -> bool:
    return run.status in FINISHED and run.tags.get(WILL_RETRY_TAG) != "true"


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def summary_run_request(outcome: BatchOutcome) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"summary:{outcome.batch_id}",
        tags={TRIGGER_TAG: outcome.trigger or "sensor", SUMMARIZES_TAG: outcome.batch_id},
    )


def remember(done: Sequence[str], new: Iterable[str], keep: int = 500) -> list[str]:
    """The summarized batch ids to keep in the cursor (the newest ``keep``)."""
    merged = list(dict.fromkeys([*done, *new]))
    return merged[-keep:]
