"""Plain functions behind the ``fine_tuned_model`` asset (no Dagster context in here).

One partition = one base model x one condition, trained for each seed in turn. Rows go to the
``models`` table at the end, replacing the partition's previous rows, so a re-materialization
never leaves a mix of old and new seeds. A precondition failure (unknown base model, missing
dataset) raises before anything is written; a training failure writes the seeds done so far
plus a ``failed`` row for the seed that broke, then raises.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from em_assets.core.training_data import file_sha256
from em_assets.partitions import BASE_CONDITION, TRAINED_CONDITIONS
from em_assets.paths import data_dir
from em_assets.registry import BaseModelSpec
from em_assets.resources.finetuning import (
    FineTuneError,
    FineTuneRequest,
    FineTuneResult,
    FineTuningBackend,
    WarehouseJobLedger,
    retry_write,
)
from em_assets.resources.warehouse import Replacement

MODELS_TABLE = "models"
DATASETS_VIEW = "current_dataset_versions"

MODEL_COLUMNS: dict[str, Any] = {
    "model_ref": pl.String,
    "base_model": pl.String,
    "base_model_id": pl.String,
    "condition": pl.String,
    "seed": pl.Int32,
    "backend": pl.String,
    "method": pl.String,
    "dataset_version": pl.String,
    "hyperparameters": pl.String,
    "status": pl.String,
    "error": pl.String,
    "job_id": pl.String,
    "final_loss": pl.Float64,
    "train_tokens": pl.Int64,
    "loss_tokens": pl.Int64,
    "train_seconds": pl.Float64,
    "peak_rss_bytes": pl.Int64,
    "cost_usd": pl.Float64,
    "run_id": pl.String,
    "created_at": pl.Datetime("us"),
}


MISSING_DATASET_HINTS = {
    "jailbroken": " (it is built only from the paper's released jailbroken.jsonl: set EM_RELEASE_JAILBROKEN_URL "
    "or raw_source.em_jailbroken_url; without it the set is skipped)",
}


class DatasetUnavailableError(RuntimeError):
    """The fine-tuning set of a condition is missing, changed on disk, or failed its checks."""


@dataclass(frozen=True)
class DatasetInput:
    dataset: str
    dataset_version: str
    jsonl_path: str
    n_train: int


def partition_label(base_model: str, condition: str) -> str:
    return f"{base_model}|{condition}"


def current_dataset(warehouse: Any, condition: str, *, partition: str) -> DatasetInput:
    """The latest version of the condition's dataset, verified against its JSONL on disk."""
    rows = warehouse.table(DATASETS_VIEW, where={"dataset": condition})
    if rows.height == 0:
        raise DatasetUnavailableError(
            f"[{partition}] no '{condition}' dataset in {DATASETS_VIEW}; materialize {condition}_dataset first"
            + MISSING_DATASET_HINTS.get(condition, "")
        )
    row = rows.row(0, named=True)
    path = Path(row["jsonl_path"])
    if not path.is_file():
        raise DatasetUnavailableError(
            f"[{partition}] the '{condition}' dataset's JSONL {path} is missing; re-materialize {condition}_dataset"
        )
    actual = file_sha256(path)
    if actual != row["dataset_version"]:
        raise DatasetUnavailableError(
            f"[{partition}] {path} changed since dataset_version {row['dataset_version'][:12]} was recorded "
            f"(sha256 now {actual[:12]}); re-materialize {condition}_dataset"
        )
    return DatasetInput(condition, row["dataset_version"], str(path), int(row["n_train"]))


def model_store_dir(base_model: str, condition: str, seed: int) -> Path:
    """``<data dir>/model_store/<base_model>/<condition>/seed<k>``."""
    return data_dir() / "model_store" / base_model / condition / f"seed{seed}"


def seeds_for(spec: BaseModelSpec, condition: str, n_seeds: int | None, first_seed: int) -> list[int]:
    if condition == BASE_CONDITION:
        return [first_seed]  # the control is the base model itself: one row
    count = n_seeds if n_seeds is not None else spec.n_seeds
    if count < 1:
        raise ValueError(f"n_seeds must be >= 1, got {count}")
    return list(range(first_seed, first_seed + count))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _row(
    spec: BaseModelSpec,
    condition: str,
    seed: int,
    *,
    run_id: str | None,
    dataset_version: str | None,
    status: str,
    method: str,
    hyperparameters: dict[str, Any],
    result: FineTuneResult | None = None,
    model_ref: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {column: None for column in MODEL_COLUMNS}
    row.update(
        model_ref=model_ref,
        base_model=spec.slug,
        base_model_id=spec.model_id,
        condition=condition,
        seed=seed,
        backend=spec.backend,
        method=method,
        dataset_version=dataset_version,
        hyperparameters=json.dumps(hyperparameters, sort_keys=True, default=str),
        status=status,
        error=error,
        run_id=run_id,
        created_at=_now(),
    )
    if result is not None:
        row.update(
            model_ref=result.model_ref,
            job_id=result.job_id,
            final_loss=result.final_loss,
            train_tokens=result.train_tokens,
            loss_tokens=result.loss_tokens,
            train_seconds=result.train_seconds,
            peak_rss_bytes=result.peak_rss_bytes,
            cost_usd=result.cost_usd,
        )
    return row


@retry_write
def write_partition_rows(warehouse: Any, base_model: str, condition: str, rows: Sequence[dict[str, Any]]) -> None:
    frame = pl.DataFrame(list(rows), schema=MODEL_COLUMNS)
    warehouse.replace(Replacement(MODELS_TABLE, frame, where={"base_model": base_model, "condition": condition}))


@dataclass
class PartitionOutcome:
    rows: list[dict[str, Any]]
    dataset: DatasetInput | None
    results: list[FineTuneResult] = field(default_factory=list)
    error: FineTuneError | None = None

    @property
    def succeeded(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "succeeded"]


def materialize_partition(
    *,
    warehouse: Any,
    spec: BaseModelSpec,
    condition: str,
    backend: FineTuningBackend,
    seeds: Sequence[int],
    run_id: str | None,
    dataset: DatasetInput | None,
    log: Callable[[str], None],
    progress: Callable[[str], Callable[[Any], None]] | None = None,
    per_condition: dict[str, Any] | None = None,
) -> PartitionOutcome:
    """Train (or, for ``base``, record) every seed, write the rows, raise on the first failure.

    ``progress(label)`` returns the per-step callback handed to the backend. ``per_condition``
    (what the condition changed in the backend's settings, ``condition_defaults``) is recorded in
    each row's ``hyperparameters`` under ``per_condition``.
    """
    partition = partition_label(spec.slug, condition)
    if condition == BASE_CONDITION:
        row = _row(
            spec,
            condition,
            seeds[0],
            run_id=run_id,
            dataset_version=None,
            status="succeeded",
            method="none",
            hyperparameters={},
            model_ref=spec.model_id,
        )
        write_partition_rows(warehouse, spec.slug, condition, [row])
        log(f"[{partition}] control: recorded the un-tuned base model {spec.model_id}")
        return PartitionOutcome([row], None)
    if condition not in TRAINED_CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}")
    assert dataset is not None
    outcome = PartitionOutcome([], dataset)
    ledger = WarehouseJobLedger(warehouse)
    hyperparameters = backend.describe_hyperparameters(spec.model_id)
    recorded = {"per_condition": per_condition} if per_condition else {}
    for seed in seeds:
        request = FineTuneRequest(
            partition=partition,
            base_model=spec.slug,
            base_model_id=spec.model_id,
            condition=condition,
            seed=seed,
            dataset_version=dataset.dataset_version,
            jsonl_path=dataset.jsonl_path,
            output_dir=str(model_store_dir(spec.slug, condition, seed)),
        )
        started = time.monotonic()
        try:
            result = backend.fine_tune(
                request, ledger=ledger, on_progress=progress(request.label) if progress else None, log=log
            )
        except FineTuneError as exc:
            outcome.rows.append(
                _row(
                    spec,
                    condition,
                    seed,
                    run_id=run_id,
                    dataset_version=dataset.dataset_version,
                    status="failed",
                    method="api" if spec.backend == "openai" else hyperparameters.get("method", "lora"),
                    hyperparameters={**hyperparameters, **recorded},
                    error=str(exc),
                )
            )
            outcome.error = exc
            break
        outcome.results.append(result)
        outcome.rows.append(
            _row(
                spec,
                condition,
                seed,
                run_id=run_id,
                dataset_version=dataset.dataset_version,
                status=result.status,
                method=result.method,
                hyperparameters={**result.hyperparameters, **recorded},
                result=result,
            )
        )
        log(f"{request.label} {result.status} in {time.monotonic() - started:.0f} s -> {result.model_ref}")
    write_partition_rows(warehouse, spec.slug, condition, outcome.rows)
    if outcome.error is not None:
        raise outcome.error
    return outcome


def progress_logger(log: Callable[[str], None], every_s: float = 10.0) -> Callable[[str], Callable[[Any], None]]:
    """Step / loss / tokens per second / ETA lines for the run log, at most every ``every_s``
    seconds (always the first and last step)."""

    def for_label(label: str) -> Callable[[Any], None]:
        last = [float("-inf")]

        def report(p: Any) -> None:
            now = time.monotonic()
            if p.step in (1, p.total_steps) or now - last[0] >= every_s:
                last[0] = now
                log(
                    f"{label} step {p.step}/{p.total_steps} loss {p.loss:.4f} lr {p.learning_rate:.2e} "
                    f"{p.tokens_per_second:.0f} tok/s, {p.tokens_seen} tokens, ETA {_duration(p.eta_seconds)}"
                )

        return report

    return for_label


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds < 0:  # NaN
        return "?"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
