"""The em_assets code location: each stage's definitions merged, plus shared resources.

``EM_PROFILE`` (``local`` by default, or ``production``) swaps in the profile's resources:
S3 artifacts and ECS-launched Pipes training in production (see ``em_assets/profiles.py``).
"""

from __future__ import annotations

import dagster as dg

from em_assets import datasets, evaluation, operations, reporting, training
from em_assets.profiles import with_profile
from em_assets.resources import data_layer_resources

defs = with_profile(
    dg.Definitions.merge(
        datasets.defs,
        training.defs,
        evaluation.defs,
        reporting.defs,
        operations.defs,
        dg.Definitions(resources=data_layer_resources()),
    )
)
