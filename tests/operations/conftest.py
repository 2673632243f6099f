"""Fixtures for the operations tests: registry YAMLs, a temp instance, the fake API server."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from em_assets.resources.warehouse import DuckDBWarehouse


def operations_defs() -> dg.Definitions:
    """The code location with the operations layer (merged here until definitions.py does)."""
    from em_assets import operations
    from em_assets.definitions import defs

    sensors = {s.name for s in defs.sensors or []}
    return defs if "new_base_model_sensor" in sensors else dg.Definitions.merge(defs, operations.defs)


@pytest.fixture
def write_registry(tmp_path) -> Callable[[list[Any]], Path]:
    path = tmp_path / "base_models.yaml"

    def write(entries: list[Any]) -> Path:
        path.write_text(yaml.safe_dump({"base_models": entries}, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def persistent_instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    """An instance on disk (SQLite event log, run storage) in the test's temp dir."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as inst:
        yield inst


@pytest.fixture
def canary_key(monkeypatch) -> str:
    key = f"sk-canary-{secrets.token_hex(16)}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


def seed_models(warehouse: DuckDBWarehouse, rows: list[tuple[str, str, int, str, str]]) -> None:
    """``models`` rows: (base_model, condition, seed, backend, status)."""
    frame = pl.DataFrame(
        [
            {
                "model_ref": f"{b}/{c}/seed{s}" if status == "succeeded" else None,
                "base_model": b,
                "base_model_id": b,
                "condition": c,
                "seed": s,
                "backend": backend,
                "method": "none" if c == "base" else "lora",
                "hyperparameters": "{}",
                "status": status,
                "created_at": datetime(2026, 1, 1),
            }
            for b, c, s, backend, status in rows
        ],
        schema_overrides={"model_ref": pl.String},
    )
    warehouse.append("models", frame)


def seed_eval_run(
    warehouse: DuckDBWarehouse,
    eval_run_id: str,
    base_model: str,
    condition: str,
    started_at: datetime,
    trigger: str = "test",
) -> None:
    warehouse.append(
        "eval_runs",
        pl.DataFrame(
            [
                {
                    "eval_run_id": eval_run_id,
                    "base_model": base_model,
                    "condition": condition,
                    "started_at": started_at,
                    "code_version": None,
                    "question_sets": '["em_main"]',
                    "sampling": "{}",
                    "trigger": trigger,
                }
            ],
            schema_overrides={"code_version": pl.String},
        ),
    )
