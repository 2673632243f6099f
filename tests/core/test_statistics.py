import pytest

from em_assets.core.statistics import pooled_rate_ci


def test_bootstrap_is_reproducible_and_brackets_the_rate():
    a = pooled_rate_ci([3, 10, 5, 0, 8], [50, 60, 55, 40, 50])
    b = pooled_rate_ci([3, 10, 5, 0, 8], [50, 60, 55, 40, 50])
    assert a == b
    assert a.rate == pytest.approx(26 / 255)
    assert a.low < a.rate < a.high
    c = pooled_rate_ci([3, 10, 5, 0, 8], [50, 60, 55, 40, 50], rng_seed=1)
    assert (c.low, c.high) != (a.low, a.high)


def test_single_seed_has_a_degenerate_interval_and_empty_is_null():
    one = pooled_rate_ci([5], [50])
    assert one.low == one.high == one.rate == 0.1
    assert pooled_rate_ci([], []).rate is None
    assert pooled_rate_ci([0], [0]).rate is None
