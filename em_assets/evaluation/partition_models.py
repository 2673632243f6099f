"""The models a (base_model, condition) partition evaluates: its seeds' succeeded rows."""

from __future__ import annotations

import dagster as dg
import polars as pl

from em_assets.resources.warehouse import DuckDBWarehouse

# Backends whose models are open weights this machine (or a Pipes process) can load.
OPEN_MODEL_BACKENDS = ("local_hf", "local_hf_pipes")


def succeeded_models(warehouse: DuckDBWarehouse, base_model: str, condition: str) -> pl.DataFrame:
    models = warehouse.table("models", {"base_model": base_model, "condition": condition, "status": "succeeded"})
    if models.is_empty():
        raise dg.Failure(
            f"no trained model for partition {base_model}|{condition}: materialize fine_tuned_model for it first"
        )
    return models.sort("seed")
