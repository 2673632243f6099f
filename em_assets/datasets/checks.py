"""Blocking asset checks: each fine-tuning set must meet its contract before anything trains on it."""

from __future__ import annotations

import dagster as dg
import polars as pl

from em_assets.datasets.assets import DATASET_ASSETS, _markdown_table
from em_assets.datasets.contracts import validate_dataset
from em_assets.resources.warehouse import DuckDBWarehouse


def _contract_check(dataset: str, asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=f"{dataset}_contract",
        blocking=True,
        description=(
            "Great Expectations contract: roles user then assistant, length bounds, no safety word, "
            "static labeler agrees with the dataset, unique user prompts"
            + (", 1:1 pairing with insecure rows" if dataset == "educational" else "")
            + "."
        ),
    )
    def _check(warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
        rows = warehouse.table("current_dataset_rows", {"dataset": dataset})
        insecure = warehouse.table("current_dataset_rows", {"dataset": "insecure"}) if dataset == "educational" else None
        result = validate_dataset(rows, dataset, insecure)
        table = pl.DataFrame(
            {
                "rule": [o.rule for o in result.outcomes],
                "passed": [o.passed for o in result.outcomes],
                "failing_rows": [o.unexpected_count for o in result.outcomes],
                "examples": [", ".join(o.failing_row_ids[:5]) for o in result.outcomes],
            }
        )
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.describe(),
            metadata={
                "rows_checked": result.n_rows,
                "rules": dg.MetadataValue.md(_markdown_table(table)),
                "failing_row_ids": dg.MetadataValue.json(
                    {o.rule: o.failing_row_ids for o in result.failures()}
                ),
            },
        )

    return _check


DATASET_CHECKS = [_contract_check(name, asset) for name, asset in DATASET_ASSETS.items()]
