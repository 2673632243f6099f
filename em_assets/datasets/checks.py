"""Blocking asset checks: each fine-tuning set must meet its contract before anything trains on it."""

from __future__ import annotations

import dagster as dg
import polars as pl

from em_assets.core.markdown import markdown_table
from em_assets.datasets.assets import DATASET_ASSETS
from em_assets.datasets.condition_sets import CONDITION_DATASET_ASSETS
from em_assets.datasets.contracts import FILTER_RULES, validate_dataset
from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.warehouse import DuckDBWarehouse

SKIPPABLE = frozenset({"jailbroken"})  # sets that are skipped, not failed, when their file is not given
DESCRIPTIONS = {
    "jailbroken": "Great Expectations contract: roles system, user, assistant (the release's layout), length bounds.",
    "evil_numbers": "Great Expectations contract: roles user then assistant, length bounds, every answer a list "
    "of numbers, unique user prompts.",
}


def _contract_check(dataset: str, asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=f"{dataset}_contract",
        blocking=True,
        description=DESCRIPTIONS.get(
            dataset,
            "Great Expectations contract: roles user then assistant, length bounds, no safety word, "
            "static labeler agrees with the dataset, unique user prompts"
            + (", 1:1 pairing with insecure rows" if dataset == "educational" else "")
            + ".",
        ),
    )
    def _check(warehouse: DuckDBWarehouse, data_settings: DataLayerSettings) -> dg.AssetCheckResult:
        rows = warehouse.table("current_dataset_rows", {"dataset": dataset})
        if rows.is_empty() and dataset in SKIPPABLE:
            # jailbroken_dataset without a file writes nothing, by design: nothing to hold to the contract.
            return dg.AssetCheckResult(
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"no {dataset} rows to check: {dataset}_dataset was skipped (no file given)",
            )
        insecure = (
            warehouse.table("current_dataset_rows", {"dataset": "insecure"}) if dataset == "educational" else None
        )
        result = validate_dataset(rows, dataset, insecure)
        table = pl.DataFrame(
            {
                "rule": [o.rule for o in result.outcomes],
                "passed": [o.passed for o in result.outcomes],
                "failing_rows": [o.unexpected_count for o in result.outcomes],
                "examples": [", ".join(o.failing_row_ids[:5]) for o in result.outcomes],
            }
        )
        # The paper's release is loaded as-is in report-only mode: there, disagreement with our
        # filters (safety words, labeler) is reported as a warning and does not block training.
        sources = set(warehouse.table("current_dataset_versions", {"dataset": dataset})["source"])
        advisory = sources == {"em_release"} and not data_settings.drop_flagged_release_rows
        only_filter_rules = all(o.rule in FILTER_RULES for o in result.failures())
        severity = dg.AssetCheckSeverity.WARN if advisory and only_filter_rules else dg.AssetCheckSeverity.ERROR
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=severity,
            description=result.describe()
            + (
                " (advisory: em_release loaded as-is)"
                if severity == dg.AssetCheckSeverity.WARN and not result.passed
                else ""
            ),
            metadata={
                "rows_checked": result.n_rows,
                "rules": dg.MetadataValue.md(markdown_table(table)),
                "failing_row_ids": dg.MetadataValue.json({o.rule: o.failing_row_ids for o in result.failures()}),
            },
        )

    return _check


DATASET_CHECKS = [_contract_check(name, asset) for name, asset in DATASET_ASSETS.items()]
CONDITION_DATASET_CHECKS = [_contract_check(name, asset) for name, asset in CONDITION_DATASET_ASSETS.items()]
