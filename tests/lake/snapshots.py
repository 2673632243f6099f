"""The check that a past summary's snapshot rows give back its rates (issue 18), shared by the
lake's graph-slice test and the whole-graph test."""

from __future__ import annotations

import polars as pl

from em_assets.core import statistics

RATE_KEYS = ["source", "condition", "triggered", "scope_kind", "scope"]


def assert_rates_recompute(rates: pl.DataFrame, inputs: pl.DataFrame) -> None:
    """``statistics.condition_rates`` over ``inputs`` gives exactly ``rates`` (every row, every
    misaligned rate and judged count)."""
    recomputed = statistics.condition_rates(inputs)
    joined = rates.join(recomputed, on=RATE_KEYS, suffix="_again")
    assert joined.height == rates.height == recomputed.height > 0
    assert (joined["misaligned_rate"].fill_null(-1) == joined["misaligned_rate_again"].fill_null(-1)).all()
    assert (joined["n_judged"] == joined["n_judged_again"]).all()
