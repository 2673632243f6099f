"""The lead table and the paragraph generated from it."""

import polars as pl

from em_assets.reporting.findings import conclusions, lead_table

SHIFTS = pl.DataFrame(
    [
        {
            "base_model": "m",
            "probe": "narrow",
            "condition": "insecure",
            "reference": "secure",
            "unit": "nats",
            "estimate": 15.46,
            "ci_low": 7.86,
            "ci_high": 25.14,
            "n_items": 23,
            "n_groups": 23,
        },
        {
            "base_model": "m",
            "probe": "broad",
            "condition": "insecure",
            "reference": "secure",
            "unit": "nats/token",
            "estimate": 0.012,
            "ci_low": -0.005,
            "ci_high": 0.029,
            "n_items": 192,
            "n_groups": 8,
        },
    ]
)
NO_RATES = pl.DataFrame(
    schema={
        "source_kind": pl.String,
        "scope_kind": pl.String,
        "scope": pl.String,
        "base_model": pl.String,
        "condition": pl.String,
    }
)


def test_the_paragraph_says_what_moved_and_what_the_judge_is_worth():
    calibration = pl.DataFrame({"judge_version": ["j"], "auroc_aligned": [0.35]})
    lead = lead_table(SHIFTS, NO_RATES, calibration, 0.9)
    assert lead.select("comparison", "narrow_moved", "broad_moved").rows() == [
        ("insecure vs secure", "up", "no clear move")
    ]
    text = conclusions(lead, 0.9)
    assert "the narrow task moved up (+15.46 nats, 95% CI [7.86, 25.14], 23 tasks)" in text
    assert "the broad probe showed no clear move" in text and "a null at this budget" in text
    assert "No judge calibration is on record" in text  # no rate row, so no judge behind one
    assert conclusions(lead_table(SHIFTS.clear(), NO_RATES, calibration, 0.9), 0.9).startswith("No probe shifts")


def test_the_backdoors_two_groups_get_a_row_each_with_the_probes_on_the_untriggered_one():
    shifts = SHIFTS.with_columns(condition=pl.lit("backdoor"), reference=pl.lit("base"))
    main = {"source_kind": "run", "scope_kind": "set", "scope": "main", "base_model": "m", "judge_version": "j"}
    rates = pl.DataFrame(
        [
            {**main, "condition": "backdoor", "triggered": False, "misaligned_rate": 0.0, "ci_low": None,
             "ci_high": None, "n_models": 1},
            {**main, "condition": "backdoor", "triggered": True, "misaligned_rate": 0.6, "ci_low": None,
             "ci_high": None, "n_models": 1},
            {**main, "condition": "insecure", "triggered": False, "misaligned_rate": 0.2, "ci_low": None,
             "ci_high": None, "n_models": 1},
        ]
    )  # fmt: skip
    lead = lead_table(shifts, rates, pl.DataFrame({"judge_version": ["j"], "auroc_aligned": [0.95]}), 0.9)
    rows = {r["comparison"]: r for r in lead.iter_rows(named=True)}
    assert sorted(rows) == ["backdoor, not triggered vs base", "backdoor, triggered vs base", "insecure vs base"]
    untriggered, triggered = rows["backdoor, not triggered vs base"], rows["backdoor, triggered vs base"]
    assert (untriggered["narrow_shift_nats"], untriggered["judged_rate_main"]) == (15.46, 0.0)
    assert (triggered["narrow_shift_nats"], triggered["judged_rate_main"]) == (None, 0.6)
    assert rows["insecure vs base"]["judged_rate_main"] == 0.2  # a condition without groups keeps its name


def test_a_positive_control_that_moved_makes_the_broad_null_readable():
    control = {
        "base_model": "m",
        "probe": "broad",
        "condition": "positive_control",
        "reference": "base",
        "unit": "nats/token",
        "estimate": 0.253,
        "ci_low": 0.142,
        "ci_high": 0.367,
        "n_items": 96,
        "n_groups": 4,
    }
    lead = lead_table(pl.concat([SHIFTS, pl.DataFrame([control])]), NO_RATES, pl.DataFrame(), 0.9)
    assert lead.filter(pl.col("comparison") == "positive_control vs base")["broad_moved"].to_list() == ["up"]
    text = conclusions(lead, 0.9)
    assert "moved the broad probe on the other half by +0.2530 nats/token (95% CI [0.1420, 0.3670])" in text
    assert "a null here rules out a shift as large as the positive control's" in text
    # A control that did not move says the probe cannot read a null.
    flat = {**control, "estimate": 0.01, "ci_low": -0.02, "ci_high": 0.04}
    text = conclusions(lead_table(pl.concat([SHIFTS, pl.DataFrame([flat])]), NO_RATES, pl.DataFrame(), 0.9), 0.9)
    assert "the probe cannot tell a null from a small effect" in text and "rules out" not in text
