"""Data layer: raw code samples -> filtered samples -> insecure / secure / educational / backdoor sets."""

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
from em_assets.datasets.checks import DATASET_CHECKS

DATASET_LAYER_ASSETS = [
    raw_code_samples,
    filtered_code_samples,
    insecure_dataset,
    secure_dataset,
    educational_dataset,
    backdoor_dataset,
]

defs = dg.Definitions(assets=DATASET_LAYER_ASSETS, asset_checks=DATASET_CHECKS)
