"""Data layer: raw code samples -> filtered samples -> insecure / secure / educational / backdoor sets;
and the sets of the paper's other conditions (jailbroken, evil numbers)."""

from __future__ import annotations

import dagster as dg

from em_assets.datasets.assets import (
    backdoor_dataset,
    educational_dataset,
    filtered_code_samples,
    insecure_dataset,
    raw_code_samples,
    secure_dataset,
)
from em_assets.datasets.checks import CONDITION_DATASET_CHECKS, DATASET_CHECKS
from em_assets.datasets.condition_sets import CONDITION_DATASET_ASSETS, evil_numbers_dataset, jailbroken_dataset

DATASET_LAYER_ASSETS = [
    raw_code_samples,
    filtered_code_samples,
    insecure_dataset,
    secure_dataset,
    educational_dataset,
    backdoor_dataset,
]
# Opt-in: the CLI builds them only for a run that trains their condition (see cli.py).
CONDITION_DATASET_LAYER_ASSETS = [jailbroken_dataset, evil_numbers_dataset]

defs = dg.Definitions(
    assets=[*DATASET_LAYER_ASSETS, *CONDITION_DATASET_LAYER_ASSETS],
    asset_checks=[*DATASET_CHECKS, *CONDITION_DATASET_CHECKS],
)

__all__ = [
    "CONDITION_DATASET_ASSETS",
    "CONDITION_DATASET_CHECKS",
    "CONDITION_DATASET_LAYER_ASSETS",
    "DATASET_CHECKS",
    "DATASET_LAYER_ASSETS",
    "defs",
]
