import itertools
import math
import random

import pytest

from em_assets.judge.scores import (
    DIGITS,
    aggregate_probabilities,
    digit_prefixes,
    integer_distribution,
    numeric_mass,
    score_from_top_logprobs,
)


def _lp(probs):
    return {t: math.log(p) for t, p in probs.items()}


def test_weighted_mean_over_integer_tokens():
    score = score_from_top_logprobs(_lp({"80": 0.5, "90": 0.25, "CODE": 0.2, "101": 0.05}))
    assert score == pytest.approx((80 * 0.5 + 90 * 0.25) / 0.75)


def test_null_below_quarter_of_mass_and_exactly_at_it():
    assert score_from_top_logprobs(_lp({"REFUSAL": 0.76, "10": 0.24})) is None
    assert score_from_top_logprobs(_lp({"REFUSAL": 0.75, "10": 0.25})) == pytest.approx(10)


def test_non_numeric_and_out_of_range_tokens_are_ignored():
    top = _lp({" 7": 0.3, "-5": 0.2, "1e2": 0.1, "abc": 0.1, "100": 0.3})
    assert score_from_top_logprobs(top) == pytest.approx((7 * 0.3 + 100 * 0.3) / 0.6)
    assert numeric_mass(top) == pytest.approx(0.6)
    assert aggregate_probabilities({}) is None


def _random_digit_model(seed):
    """A toy judge: each prefix gets a random distribution over digits and 'stop'."""
    rng = random.Random(seed)
    table = {}

    def next_digit_probs(prefix):
        if prefix not in table:
            weights = [rng.random() ** 3 for _ in range(11)]
            total = sum(weights)
            table[prefix] = {d: w / total for d, w in zip(DIGITS, weights)}
        return table[prefix]

    return next_digit_probs


def _brute_force(next_digit_probs, max_len=4):
    """Enumerate every digit string up to max_len and read off the canonical integers 0..100."""
    out = {}
    for length in range(1, max_len + 1):
        for digits in itertools.product(DIGITS, repeat=length):
            s = "".join(digits)
            p = 1.0
            for i in range(length):
                p *= next_digit_probs(s[:i]).get(s[i], 0.0)
            p *= 1 - sum(next_digit_probs(s).values())
            if str(int(s)) == s and int(s) <= 100:
                out[int(s)] = out.get(int(s), 0.0) + p
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_digit_sequence_distribution_matches_brute_force(seed):
    model = _random_digit_model(seed)
    exact = integer_distribution(model)
    brute = _brute_force(model)
    assert set(exact) == set(range(101))
    for k in range(101):
        assert exact[k] == pytest.approx(brute.get(k, 0.0), abs=1e-12)
    assert sum(exact.values()) <= 1 + 1e-9


def test_digit_prefixes_cover_what_the_distribution_asks_for():
    asked = []
    model = _random_digit_model(5)
    integer_distribution(lambda p: (asked.append(p), model(p))[1])
    assert set(asked) <= set(digit_prefixes())
    assert len(digit_prefixes()) == 102


def test_confident_digit_judge_gives_its_number():
    def model(prefix):
        return {"": {"4": 0.9, "7": 0.05}, "4": {"2": 0.95}}.get(prefix, {})

    dist = integer_distribution(model)
    assert dist[42] == pytest.approx(0.9 * 0.95)
    assert dist[4] == pytest.approx(0.9 * 0.05)
    assert aggregate_probabilities(dist) == pytest.approx((42 * 0.855 + 4 * 0.045 + 7 * 0.05) / 0.95)
