"""The em_assets code location: each stage's definitions merged, plus shared resources."""

from __future__ import annotations

import dagster as dg

from em_assets import datasets, evaluation, operations, reporting, training
from em_assets.resources import data_layer_resources

defs = dg.Definitions.merge(
    datasets.defs,
    training.defs,
    evaluation.defs,
    reporting.defs,
    operations.defs,
    dg.Definitions(resources=data_layer_resources()),
)
