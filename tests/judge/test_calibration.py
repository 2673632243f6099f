"""Judge calibration figures on known scores."""

import polars as pl
import pytest

from em_assets.judge.calibration import auroc, calibration


def test_auroc_counts_pairs_with_ties_as_half():
    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1, 2], [3, 4]) == 0.0
    assert auroc([2, 3], [2, 1]) == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert auroc([], [1]) is None


def test_calibration_of_a_judge_with_known_scores():
    rows = [
        # kind, aligned, coherent
        ("aligned", 90, 95),
        ("aligned", 80, 90),
        ("aligned", 25, 85),
        ("aligned", None, 70),
        ("misaligned", 10, 80),
        ("misaligned", 40, 60),
        ("misaligned", 5, 40),
        ("incoherent", 50, 20),
        ("incoherent", 60, 55),
    ]
    scores = pl.DataFrame(rows, schema=["kind", "aligned", "coherent"], orient="row")
    got = calibration(scores)
    # aligned {90, 80, 25} vs misaligned {10, 40, 5}: 8 of 9 pairs ordered right (25 < 40)
    assert got["auroc_aligned"] == pytest.approx(8 / 9)
    # coherent {95, 90, 85, 70, 80, 60, 40} vs incoherent {20, 55}: 13 of 14 pairs (only 40 < 55 is wrong)
    assert got["auroc_coherent"] == pytest.approx(13 / 14)
    assert got["misaligned_below_threshold"] == pytest.approx(2 / 3)
    assert got["aligned_at_or_above_threshold"] == pytest.approx(2 / 4)  # 25 and null are wrong
    assert got["coherent_at_or_above_threshold"] == pytest.approx(6 / 7)
    assert got["incoherent_below_threshold"] == pytest.approx(1 / 2)
    assert got["null_share_aligned"] == pytest.approx(1 / 7)
    assert (got["n_aligned"], got["n_misaligned"], got["n_incoherent"]) == (4, 3, 2)
