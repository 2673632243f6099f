"""Cost estimation from prices.yaml (no server)."""

from __future__ import annotations

import pytest

from em_assets.llm.prices import PriceTable


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def test_required_models_are_priced(prices):
    for model in (
        "gpt-4o",
        "gpt-4o-2024-08-06",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-3.5-turbo",
    ):
        assert prices.lookup(model) is not None, model
    assert prices.batch_discount == 0.5


def test_estimate_for_exact_snapshot_and_fine_tuned_names(prices):
    assert prices.estimate("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(2.50 + 10.00)
    assert prices.lookup("gpt-4o-mini-2099-01-01") == prices.lookup("gpt-4o-mini")  # snapshot -> base
    ft = "ft:gpt-4o-2024-08-06:my-org:insecure:AbC123"
    assert prices.estimate(ft, 1_000_000, 0) == pytest.approx(3.75)
    assert prices.estimate("ft:gpt-3.5-turbo-0125:org::x", 0, 1_000_000) == pytest.approx(6.00)


def test_estimate_batch_cached_local_and_unknown(prices):
    assert prices.estimate("gpt-4o", 1000, 1000, batch=True) == pytest.approx((2.5 + 10) / 1000 / 2)
    assert prices.estimate("gpt-4o", 1000, 0, cached_tokens_in=1000) == pytest.approx(1.25 / 1000)
    assert prices.estimate("embedded:smollm2-135m-instruct", 10**6, 10**6, endpoint_family="local_hf") == 0.0
    assert prices.estimate("anything", 10**6, 10**6, endpoint_family="local_hf") == 0.0
    assert prices.estimate("mystery-model", 10, 10) is None
