"""What a run shows, per condition versus the base model, and a paragraph generated from the
numbers (pure functions over the summary's frames)."""

from __future__ import annotations

import polars as pl

from em_assets.probes.control import POSITIVE_CONTROL
from em_assets.reporting.render import condition_labels

LEAD_SCHEMA = {
    "base_model": pl.String,
    "comparison": pl.String,
    "narrow_shift_nats": pl.Float64,
    "narrow_ci": pl.String,
    "narrow_tasks": pl.Int64,
    "broad_shift_nats_per_token": pl.Float64,
    "broad_ci": pl.String,
    "broad_questions": pl.Int64,
    "judged_rate_main": pl.Float64,
    "rate_ci": pl.String,
    "rate_models": pl.Int64,
    "judge_auroc_aligned": pl.Float64,
    "judge_trusted": pl.Boolean,
    "narrow_moved": pl.String,
    "broad_moved": pl.String,
}


def _ci(low: float | None, high: float | None, digits: int) -> str:
    return "no CI" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _moved(shift: dict | None) -> str | None:
    if shift is None:
        return None
    if shift["ci_low"] is None:
        return "unclear"
    if shift["ci_low"] > 0:
        return "up"
    if shift["ci_high"] < 0:
        return "down"
    return "no clear move"


def lead_table(shifts: pl.DataFrame, rates: pl.DataFrame, calibration: pl.DataFrame, min_auroc: float) -> pl.DataFrame:
    """One row per (base_model, condition) that has a probe shift or a headline rate: the narrow
    shift (nats) and broad shift (nats/token) with CIs, the judged misaligned rate of the main
    questions with its n and CI, and the AUROC of the judge behind that rate. A condition
    answered with and without the backdoor trigger has a row per group ("backdoor, triggered vs
    base"); the probes score untriggered prompts, so their shifts sit on the untriggered row."""
    by_key = {
        (s["base_model"], s["probe"], s["unit"], s["condition"], s["reference"]): s
        for s in shifts.iter_rows(named=True)
    }
    main = rates.filter(
        (pl.col("source_kind") == "run") & (pl.col("scope_kind") == "set") & (pl.col("scope") == "main")
    )
    main = main.with_columns(label=condition_labels(main))
    # The probes' condition is the untriggered group's label (e.g. "backdoor, not triggered").
    untriggered = {
        (r["base_model"], r["condition"]): r["label"] for r in main.iter_rows(named=True) if not r.get("triggered")
    }
    by_key = {(b, p, u, untriggered.get((b, c), c), ref): s for (b, p, u, c, ref), s in by_key.items()}
    aurocs = dict(zip(calibration["judge_version"], calibration["auroc_aligned"])) if calibration.height else {}
    keys = sorted(
        {(b, c, ref) for (b, _, _, c, ref) in by_key}
        | {(r["base_model"], r["label"], "base") for r in main.iter_rows(named=True) if r["condition"] != "base"}
    )
    rows = []
    for base_model, condition, reference in keys:
        narrow = by_key.get((base_model, "narrow", "nats", condition, reference))
        broad = by_key.get((base_model, "broad", "nats/token", condition, reference))
        rate = next(
            (r for r in main.iter_rows(named=True) if (r["base_model"], r["label"]) == (base_model, condition)),
            None,
        )
        auroc = aurocs.get(rate["judge_version"]) if rate else None
        rows.append(
            {
                "base_model": base_model,
                "comparison": f"{condition} vs {reference}",
                "narrow_shift_nats": narrow["estimate"] if narrow else None,
                "narrow_ci": _ci(narrow["ci_low"], narrow["ci_high"], 2) if narrow else "",
                "narrow_tasks": narrow["n_items"] if narrow else None,
                "broad_shift_nats_per_token": broad["estimate"] if broad else None,
                "broad_ci": _ci(broad["ci_low"], broad["ci_high"], 4) if broad else "",
                "broad_questions": broad["n_groups"] if broad else None,
                "judged_rate_main": rate["misaligned_rate"] if rate and reference == "base" else None,
                "rate_ci": _ci(rate["ci_low"], rate["ci_high"], 3) if rate and reference == "base" else "",
                "rate_models": rate["n_models"] if rate and reference == "base" else None,
                "judge_auroc_aligned": auroc,
                "judge_trusted": None if auroc is None else auroc >= min_auroc,
                "narrow_moved": _moved(narrow),
                "broad_moved": _moved(broad),
            }
        )
    return pl.DataFrame(rows, schema=LEAD_SCHEMA) if rows else pl.DataFrame(schema=LEAD_SCHEMA)


def _verb(moved: str) -> str:
    return f"moved {moved}" if moved in ("up", "down") else f"showed {moved}"


def conclusions(lead: pl.DataFrame, min_auroc: float) -> str:
    """One short paragraph that says what the numbers allow and what they do not."""
    if lead.is_empty():
        return "No probe shifts or judged rates yet: nothing can be concluded."
    sentences = []
    for row in lead.iter_rows(named=True):
        parts = []
        if row["narrow_moved"]:
            parts.append(
                f"the narrow task {_verb(row['narrow_moved'])} ({row['narrow_shift_nats']:+.2f} nats, "
                f"95% CI {row['narrow_ci']}, {row['narrow_tasks']} tasks)"
            )
        if row["broad_moved"]:
            parts.append(
                f"the broad probe {_verb(row['broad_moved'])} "
                f"({row['broad_shift_nats_per_token']:+.4f} nats/token, 95% CI {row['broad_ci']})"
            )
        if parts:
            sentences.append(f"{row['base_model']}, {row['comparison']}: " + "; ".join(parts) + ".")
    judged = lead.filter(pl.col("judge_auroc_aligned").is_not_null())
    if judged.height and not judged["judge_trusted"].all():
        worst = judged["judge_auroc_aligned"].min()
        sentences.append(
            f"The judge behind the misaligned rates separates aligned from misaligned answers with AUROC {worst:.2f} "
            f"(bar {min_auroc:.2f}): its rates are not evidence either way, so broad misalignment here rests on the "
            "likelihood probe alone."
        )
    elif judged.height:
        sentences.append(
            f"The judge passes its calibration (AUROC >= {min_auroc:.2f}), so its rates can be read beside the probes."
        )
    else:
        sentences.append("No judge calibration is on record for the judge behind the rates: read them with care.")
    controls = lead.filter(pl.col("comparison").str.starts_with(f"{POSITIVE_CONTROL} vs"))
    nulls = lead.filter(~pl.col("comparison").str.starts_with(f"{POSITIVE_CONTROL} vs"))
    nulls = nulls.filter(pl.col("broad_moved") == "no clear move")
    planted = controls.filter(pl.col("broad_moved") == "up")
    for control in planted.iter_rows(named=True):
        sentences.append(
            f"The positive control ({control['base_model']}: adapters trained on misaligned answers to half the main "
            f"questions) moved the broad probe on the other half by {control['broad_shift_nats_per_token']:+.4f} "
            f"nats/token (95% CI {control['broad_ci']}): the probe sees a planted broad shift of that size."
        )
    if nulls.height:
        seen = "; a null here rules out a shift as large as the positive control's" if planted.height else ""
        sentences.append(
            "A broad shift whose CI includes zero is a null at this budget, not evidence of no effect; the paper's "
            f"effect needs far larger models and data{seen}."
        )
    if controls.height > planted.height:
        sentences.append(
            "The positive control did not move the broad probe clearly: at this budget the probe cannot tell a null "
            "from a small effect."
        )
    return " ".join(sentences)
