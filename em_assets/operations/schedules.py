"""``weekly_reevaluation``: sample, judge and code-check every trained partition again.

Model APIs change under a fixed name and judges get replaced; re-running the evaluation (not
the training) on a schedule keeps a history in ``eval_runs`` that shows such drift. Models
served by an API backend sample through the OpenAI Batch API (half price; a weekly run can
wait up to 24 h). The summary follows once the whole batch has finished
(``summary_after_batch_sensor``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from em_assets import environment
from em_assets.operations.jobs import reevaluation_job
from em_assets.operations.plans import (
    API_ENGINE_RESOURCE,
    batch_api_run_config,
    reevaluation_run_requests,
    reevaluation_targets,
)
from em_assets.operations.sensors import autostart_status
from em_assets.partitions import BASE_MODEL_DIMENSION
from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.training.runner import MODELS_TABLE

DEFAULT_CRON = environment.BY_NAME["EM_REEVALUATION_CRON"].default  # Mondays 04:00: a quiet hour for 2 cores


@dg.schedule(
    job=reevaluation_job,
    cron_schedule=environment.value("EM_REEVALUATION_CRON"),
    execution_timezone=environment.value("EM_REEVALUATION_TIMEZONE"),
    default_status=dg.DefaultScheduleStatus(autostart_status().value),
    description="Re-evaluates every trained (base_model, condition) partition; no retraining.",
)
def weekly_reevaluation(
    context: dg.ScheduleEvaluationContext, warehouse: DuckDBWarehouse
) -> list[dg.RunRequest] | dg.SkipReason:
    existing = context.instance.get_dynamic_partitions(BASE_MODEL_DIMENSION)
    trained = warehouse.table(MODELS_TABLE, {"status": "succeeded"})
    targets = reevaluation_targets(trained, existing)
    if not targets:
        return dg.SkipReason("no base_model partition has a trained model yet: nothing to re-evaluate")
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    batch_id = f"reevaluation@{scheduled.astimezone(UTC):%Y-%m-%dT%H:%MZ}"
    api = sum(t.uses_api for t in targets)
    api_run_config = None
    if api:
        configured = configured_resource(context.repository_def, API_ENGINE_RESOURCE)
        if configured is None:
            # Better a full-price evaluation than one against a default-configured engine.
            context.log.warning(f"resource {API_ENGINE_RESOURCE!r} has no configured values: Batch API not used")
        else:
            api_run_config = batch_api_run_config(configured)
    context.log.info(f"{batch_id}: {len(targets)} partition(s), {api if api_run_config else 0} through the Batch API")
    return reevaluation_run_requests(targets, batch_id, api_run_config)


def configured_resource(repository_def: dg.RepositoryDefinition, key: str) -> dict[str, Any] | None:
    """A resource's config as the code location sets it (unresolved: EnvVars stay ``{"env": ...}``,
    so no resolved value is copied into a run's stored config); None when there is none."""
    resource = repository_def.get_top_level_resources().get(key)
    field = getattr(resource, "config_field", None)
    if field is None or not field.default_provided or not isinstance(field.default_value, dict):
        return None
    return dict(field.default_value)


OPERATIONS_SCHEDULES = [weekly_reevaluation]
