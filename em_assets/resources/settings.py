"""Experiment settings shared by the data layer's assets (tunable in the launchpad)."""

from __future__ import annotations

import dagster as dg

from em_assets.core.dataset_builders import BACKDOOR_TRIGGER
from em_assets.resources.llm_filter_settings import LLMFilterSettings


class DataLayerSettings(dg.ConfigurableResource):
    """How the fine-tuning sets are cut.

    ``max_train_rows`` caps each set's train split (0 = every row that survives the filters; the
    paper used 6,000 per set). The bundled corpus yields ~150 rows per set, which the embedded
    run trains on a subset of (see the training settings).
    """

    test_fraction: float = 0.1
    split_seed: int = 0
    max_train_rows: int = 0
    # The paper's release is already filtered: by default our filters only report on it.
    drop_flagged_release_rows: bool = False
    backdoor_trigger: str = BACKDOOR_TRIGGER
    # The paper's LLM-scored filter: off by default (resources/llm_filter_settings.py).
    llm_filter: LLMFilterSettings = LLMFilterSettings()
