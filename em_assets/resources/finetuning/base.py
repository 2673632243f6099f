"""What every fine-tuning backend takes and returns, and the DuckDB ledger the paid one needs.

A backend turns a ``FineTuneRequest`` (base model, condition, seed, training JSONL) into a
``FineTuneResult`` (a model reference plus training metrics) or raises ``FineTuneError`` whose
message names the partition, the seed and the cause. Both backends also answer a chat prompt
with a model they produced (``answer``), which the asset check uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl
import yaml
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential_jitter

from em_assets.paths import SHIPPED_DATA_DIR
from em_assets.resources.warehouse import Replacement

PRICES_FILE = SHIPPED_DATA_DIR / "finetune_prices.yaml"

Log = Callable[[str], None]


class FineTuneError(RuntimeError):
    """A fine-tune that did not produce a model; the message says which and why."""


@dataclass(frozen=True)
class FineTuneRequest:
    partition: str  # human label, e.g. "smollm2-135m-instruct|insecure"
    base_model: str  # slug
    base_model_id: str  # full reference / provider model id
    condition: str
    seed: int
    dataset_version: str
    jsonl_path: str
    output_dir: str = ""  # where a local backend writes the model (model store folder)

    @property
    def label(self) -> str:
        return f"[{self.partition} seed {self.seed}]"


@dataclass
class FineTuneResult:
    model_ref: str | None  # adapter folder or provider model id; None for a dry run
    status: str  # succeeded | dry_run
    method: str  # lora | full | api
    hyperparameters: dict[str, Any]
    job_id: str | None = None
    final_loss: float | None = None
    train_tokens: int | None = None
    loss_tokens: int | None = None
    train_seconds: float | None = None
    peak_rss_bytes: int | None = None
    cost_usd: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


class FineTuningBackend(Protocol):
    """The interface the ``fine_tuned_model`` asset relies on."""

    backend_name: str

    def describe_hyperparameters(self, base_model_id: str = "") -> dict[str, Any]: ...

    def fine_tune(
        self,
        request: FineTuneRequest,
        *,
        ledger: JobLedger | None = None,
        on_progress: Callable[[Any], None] | None = None,
        log: Log | None = None,
    ) -> FineTuneResult: ...

    def answer(self, model_ref: str, prompt: str, *, max_new_tokens: int = 200) -> str: ...


def load_price_table(path: str | Path = PRICES_FILE) -> dict[str, float]:
    """``training_usd_per_1m_tokens`` of the price YAML."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    table = data.get("training_usd_per_1m_tokens")
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected a 'training_usd_per_1m_tokens' mapping")
    return {str(k): float(v) for k, v in table.items()}


# ---------------------------------------------------------------------------------------------
# DuckDB writes from a step that is not in the duckdb_writer pool


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


# The training step runs in the `local_training` pool, not `duckdb_writer`, so its few small
# writes may meet another writer holding the file: retry them, for longer than the
# warehouse's own connect retry, rather than lose a paid job id.
retry_write = retry(
    retry=retry_if_exception(_is_lock_error),
    wait=wait_exponential_jitter(initial=0.5, max=10),
    stop=stop_after_delay(600),
    reraise=True,
)


class JobLedger(Protocol):
    """Where the provider backend remembers uploaded files and jobs (so reruns resume)."""

    def file_id(self, provider: str, content_sha256: str) -> str | None: ...

    def remember_file(self, provider: str, content_sha256: str, file_id: str, filename: str, n_bytes: int) -> None: ...

    def forget_file(self, provider: str, content_sha256: str) -> None: ...

    def job(self, job_key: str) -> dict[str, Any] | None: ...

    def save_job(self, row: dict[str, Any]) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


JOB_COLUMNS: dict[str, Any] = {
    "job_key": pl.String,
    "provider": pl.String,
    "job_id": pl.String,
    "base_model": pl.String,
    "condition": pl.String,
    "seed": pl.Int32,
    "model_id": pl.String,
    "training_file_id": pl.String,
    "dataset_version": pl.String,
    "hyperparameters": pl.String,
    "status": pl.String,
    "fine_tuned_model": pl.String,
    "trained_tokens": pl.Int64,
    "error": pl.String,
    "created_at": pl.Datetime("us"),
    "updated_at": pl.Datetime("us"),
}


class WarehouseJobLedger:
    """``JobLedger`` on the DuckDB tables ``finetune_files`` and ``finetune_jobs``."""

    def __init__(self, warehouse: Any) -> None:
        self.warehouse = warehouse

    def file_id(self, provider: str, content_sha256: str) -> str | None:
        rows = self.warehouse.table("finetune_files", where={"provider": provider, "content_sha256": content_sha256})
        return rows["file_id"][0] if rows.height else None

    @retry_write
    def remember_file(self, provider: str, content_sha256: str, file_id: str, filename: str, n_bytes: int) -> None:
        frame = pl.DataFrame(
            {
                "provider": [provider],
                "content_sha256": [content_sha256],
                "file_id": [file_id],
                "filename": [filename],
                "n_bytes": [n_bytes],
                "created_at": [_now()],
            },
            schema_overrides={"n_bytes": pl.Int64, "created_at": pl.Datetime("us")},
        )
        self.warehouse.replace(
            Replacement("finetune_files", frame, where={"provider": provider, "content_sha256": content_sha256})
        )

    @retry_write
    def forget_file(self, provider: str, content_sha256: str) -> None:
        empty = pl.DataFrame()
        self.warehouse.replace(
            Replacement("finetune_files", empty, where={"provider": provider, "content_sha256": content_sha256})
        )

    def job(self, job_key: str) -> dict[str, Any] | None:
        rows = self.warehouse.table("finetune_jobs", where={"job_key": job_key})
        return rows.row(0, named=True) if rows.height else None

    @retry_write
    def save_job(self, row: dict[str, Any]) -> None:
        values = {column: row.get(column) for column in JOB_COLUMNS}
        values["updated_at"] = _now()
        values["created_at"] = values["created_at"] or values["updated_at"]
        frame = pl.DataFrame([values], schema=JOB_COLUMNS)
        self.warehouse.replace(Replacement("finetune_jobs", frame, where={"job_key": row["job_key"]}))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
