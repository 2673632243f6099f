"""Operations: the new-base-model sensor, the weekly re-evaluation schedule, the summary that
follows a batch, and the jobs they start.

Merge into the code location with ``dg.Definitions.merge(..., operations.defs)``; the
``warehouse`` resource comes from the shared resources. Settings come from the environment:

* ``EM_MODEL_DISCOVERY_URL``: an OpenAI-compatible base URL whose ``/models`` is watched (unset:
  only the registry YAML is watched); ``EM_MODEL_DISCOVERY_PATTERNS``: comma-separated globs or
  ``re:`` regexes (or a JSON list) a model id must match; ``EM_MODEL_DISCOVERY_API_KEY_ENV``:
  the name of the variable holding that endpoint's key (default ``OPENAI_API_KEY``);
  ``EM_MODEL_DISCOVERY_BACKEND`` / ``EM_MODEL_DISCOVERY_N_SEEDS``: how discovered models train.
* ``EM_REEVALUATION_CRON`` (default Mondays 04:00), ``EM_REEVALUATION_TIMEZONE`` (UTC).
* ``EM_OPERATIONS_AUTOSTART=1``: the new-model sensor and the schedule start switched on
  (default off: they start training and paid API runs).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from em_assets import environment
from em_assets.environment import env_or
from em_assets.operations.discovery import ModelDiscoverySettings
from em_assets.operations.jobs import OPERATIONS_JOBS, new_base_model_job, reevaluation_job, summary_job
from em_assets.operations.schedules import OPERATIONS_SCHEDULES, weekly_reevaluation
from em_assets.operations.sensors import OPERATIONS_SENSORS, new_base_model_sensor, summary_after_batch_sensor


def operations_resources() -> dict[str, Any]:
    return {
        "model_discovery": ModelDiscoverySettings(
            url=env_or("EM_MODEL_DISCOVERY_URL"),
            patterns=env_or("EM_MODEL_DISCOVERY_PATTERNS"),
            api_key_env_var=env_or("EM_MODEL_DISCOVERY_API_KEY_ENV"),
            backend=env_or("EM_MODEL_DISCOVERY_BACKEND"),
            n_seeds=int(environment.value("EM_MODEL_DISCOVERY_N_SEEDS")),
        )
    }


defs = dg.Definitions(
    jobs=OPERATIONS_JOBS,
    sensors=OPERATIONS_SENSORS,
    schedules=OPERATIONS_SCHEDULES,
    resources=operations_resources(),
)

__all__ = [
    "ModelDiscoverySettings",
    "defs",
    "new_base_model_job",
    "new_base_model_sensor",
    "operations_resources",
    "reevaluation_job",
    "summary_after_batch_sensor",
    "summary_job",
    "weekly_reevaluation",
]
