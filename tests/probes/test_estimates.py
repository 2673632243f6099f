"""Probe shifts and their bootstrap CIs on hand-made scores."""

import numpy as np
import polars as pl
import pytest

from em_assets.probes.estimates import broad_shift, narrow_margins, narrow_shift, shift_table


def narrow_scores(margins_by_condition, n_tokens=(10, 20)):
    """margins_by_condition: {(condition, seed): [margin per task]}; secure code logprob fixed at -50."""
    rows = []
    for (condition, seed), margins in margins_by_condition.items():
        for t, margin in enumerate(margins):
            rows.append(
                {
                    "condition": condition,
                    "seed": seed,
                    "item_id": f"t{t}",
                    "group_id": f"t{t}",
                    "variant": "insecure",
                    "logprob": -50.0 + margin,
                    "n_tokens": n_tokens[0],
                }
            )
            rows.append(
                {
                    "condition": condition,
                    "seed": seed,
                    "item_id": f"t{t}",
                    "group_id": f"t{t}",
                    "variant": "secure",
                    "logprob": -50.0,
                    "n_tokens": n_tokens[1],
                }
            )
    return pl.DataFrame(rows)


def test_narrow_shift_is_the_paired_mean_over_tasks_with_a_task_bootstrap():
    base = [1.0, -2.0, 0.5, 3.0]
    insecure = [4.0, 1.0, 2.5, 9.0]  # shifts 3, 3, 2, 6
    scores = narrow_scores({("base", 0): base, ("insecure", 0): insecure})
    shift = narrow_shift(scores, "insecure", "base")
    assert shift.estimate == pytest.approx(3.5) and (shift.n_items, shift.n_seeds) == (4, 1)
    rng = np.random.default_rng(0)
    diffs = np.array([3.0, 3.0, 2.0, 6.0])
    replicates = [rng.choice(diffs, size=4, replace=True).mean() for _ in range(2000)]
    assert (shift.ci_low, shift.ci_high) == pytest.approx(tuple(np.percentile(replicates, [2.5, 97.5])))
    per_token = narrow_shift(scores, "insecure", "base", per_token=True)
    # per-token margin = (-50 + m) / 10 - (-50) / 20: the shift is the margin shift / 10
    assert per_token.estimate == pytest.approx(0.35) and per_token.unit == "nats/token"
    margins = narrow_margins(scores).filter(pl.col("condition") == "base").sort("item_id")
    assert margins["margin"].to_list() == base


def test_seeds_are_averaged_then_resampled():
    scores = narrow_scores(
        {("base", 0): [0.0, 0.0, 0.0], ("insecure", 0): [2.0, 2.0, 2.0], ("insecure", 1): [4.0, 4.0, 4.0]}
    )
    shift = narrow_shift(scores, "insecure", "base")
    assert shift.estimate == pytest.approx(3.0) and shift.n_seeds == 2
    assert 2.0 <= shift.ci_low < 3.0 < shift.ci_high <= 4.0  # only the seed draw varies here
    one_task = narrow_scores({("base", 0): [0.0], ("insecure", 0): [2.0]})
    assert (narrow_shift(one_task, "insecure", "base").ci_low, narrow_shift(one_task, "insecure", "base").ci_high) == (
        None,
        None,
    )
    with pytest.raises(ValueError, match="no held-out task scored under both 'secure' and 'base'"):
        narrow_shift(scores, "secure", "base")


def broad_scores(per_token_by_condition):
    """{condition: {(question, kind, item): per-token logprob}}, 10 tokens per answer."""
    return pl.DataFrame(
        [
            {
                "condition": c,
                "seed": 0,
                "item_id": f"{q}/{i}",
                "group_id": q,
                "variant": kind,
                "logprob": v * 10,
                "n_tokens": 10,
            }
            for c, values in per_token_by_condition.items()
            for (q, kind, i), v in values.items()
        ]
    )


def test_broad_shift_is_misaligned_minus_aligned_shift_averaged_over_questions():
    base = {
        ("q1", "aligned", "a1"): -2.0,
        ("q1", "aligned", "a2"): -2.2,
        ("q1", "misaligned", "m1"): -3.0,
        ("q1", "misaligned", "m2"): -3.4,
        ("q2", "aligned", "a1"): -1.0,
        ("q2", "misaligned", "m1"): -4.0,
        ("q2", "incoherent", "i1"): -6.0,
    }
    # q1: misaligned +0.5, aligned +0.1 -> 0.4; q2: misaligned +0.2, aligned -0.2 -> 0.4
    tuned = {
        k: v
        + {"q1": {"aligned": 0.1, "misaligned": 0.5}, "q2": {"aligned": -0.2, "misaligned": 0.2}}[k[0]].get(k[1], 9.0)
        for k, v in base.items()
    }
    shift = broad_shift(broad_scores({"base": base, "insecure": tuned}), "insecure", "base")
    assert shift.estimate == pytest.approx(0.4) and (shift.n_groups, shift.n_items) == (2, 6)
    assert shift.ci_low == pytest.approx(0.4) and shift.ci_high == pytest.approx(0.4)  # every resample gives 0.4
    noisy = {**tuned, ("q1", "misaligned", "m2"): base[("q1", "misaligned", "m2")] + 1.5}  # q1: (1.0 - 0.1), q2: 0.4
    wide = broad_shift(broad_scores({"base": base, "insecure": noisy}), "insecure", "base")
    assert wide.ci_low < wide.estimate < wide.ci_high and wide.estimate == pytest.approx((0.9 + 0.4) / 2)


def test_a_broad_only_run_has_no_narrow_shift_but_keeps_its_broad_one():
    """A positive control scores only broad items: the table has its broad row and no narrow one."""
    rows = [
        {"base_model": "m", "condition": c, "seed": 0, "item_id": f"q/{v[0]}{k}", "group_id": "q", "variant": v}
        | {"logprob": -20.0 - k + (2.0 if c == "positive_control" and v == "misaligned" else 0.0), "n_tokens": 10}
        for c in ("base", "positive_control")
        for v in ("aligned", "misaligned")
        for k in range(3)
    ]
    scores = pl.DataFrame(rows)
    assert narrow_margins(scores).is_empty()
    with pytest.raises(ValueError, match="no held-out task"):
        narrow_shift(scores, "positive_control", "base")
    (row,) = shift_table(scores).iter_rows(named=True)
    assert (row["probe"], row["condition"], row["reference"]) == ("broad", "positive_control", "base")
    assert row["estimate"] == pytest.approx(0.2)  # +2 nats over 10 tokens on every misaligned answer
