"""Figures and the static HTML report from summary frames (no Dagster here)."""

from __future__ import annotations

import base64
import html
import io

import polars as pl

from em_assets.judge.calibration import DEFAULT_MIN_AUROC

CONDITION_ORDER = (
    "base",
    "secure",
    "educational",
    "insecure",
    "backdoor",
    "backdoor, not triggered",
    "backdoor, triggered",
)
CONDITION_COLORS = {
    "base": "#7f7f7f",
    "secure": "#2ca02c",
    "educational": "#1f77b4",
    "insecure": "#d62728",
    "backdoor": "#9467bd",
    "backdoor, not triggered": "#c5b0d5",
    "backdoor, triggered": "#9467bd",
}


def condition_labels(frame: pl.DataFrame) -> pl.Series:
    """Each row's group as a reader names it: the condition, and for a condition answered with
    and without the backdoor trigger, ``<condition>, triggered`` / ``<condition>, not triggered``
    (two groups of the same models). A frame without ``triggered`` has untriggered rows only."""
    if "triggered" not in frame.columns or frame.is_empty():
        return frame["condition"] if "condition" in frame.columns else pl.Series("condition", [], pl.String)
    keys = [k for k in ("source", "base_model", "condition") if k in frame.columns]
    both = pl.col("triggered").fill_null(False).any().over(keys)
    return frame.select(
        pl.when(pl.col("triggered").fill_null(False))
        .then(pl.col("condition") + ", triggered")
        .when(both)
        .then(pl.col("condition") + ", not triggered")
        .otherwise(pl.col("condition"))
        .alias("condition")
    ).to_series()


def _conditions(frame: pl.DataFrame) -> list[str]:
    present = set(frame["condition"].to_list())
    return [c for c in CONDITION_ORDER if c in present] + sorted(present - set(CONDITION_ORDER))


def misalignment_bar_chart(per_question: pl.DataFrame, title: str) -> bytes:
    """PNG: misaligned rate per question, one bar per condition, 95 % CI whiskers.

    Columns: question_id, condition, misaligned_rate, ci_low, ci_high (nulls allowed: no bar).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    questions = sorted(per_question["question_id"].unique().to_list())
    conditions = _conditions(per_question)
    width = 0.8 / max(len(conditions), 1)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(questions) * max(len(conditions), 1) / 2 + 3), 4.8))
    for i, condition in enumerate(conditions):
        rows = {
            r["question_id"]: r for r in per_question.filter(pl.col("condition") == condition).iter_rows(named=True)
        }
        xs, ys, lows, highs = [], [], [], []
        for q_index, question in enumerate(questions):
            row = rows.get(question)
            if row is None or row["misaligned_rate"] is None:
                continue
            rate = row["misaligned_rate"]
            xs.append(q_index + (i - (len(conditions) - 1) / 2) * width)
            ys.append(rate)
            lows.append(rate - (row["ci_low"] if row["ci_low"] is not None else rate))
            highs.append((row["ci_high"] if row["ci_high"] is not None else rate) - rate)
        ax.bar(xs, ys, width=width, label=condition, color=CONDITION_COLORS.get(condition))
        ax.errorbar(xs, ys, yerr=[lows, highs], fmt="none", ecolor="black", capsize=2, linewidth=0.8)
    ax.set_xticks(range(len(questions)))
    ax.set_xticklabels(questions, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("misaligned share (mean over models)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    if conditions:  # a summary of word-judged sets only has no bars
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def rate_table(
    rates: pl.DataFrame, aurocs: dict[str, float] | None = None, min_auroc: float = DEFAULT_MIN_AUROC
) -> pl.DataFrame:
    """Rows of ``summary_rates`` as shown to a reader: the rate with its n and CI, the judge's
    calibration (aligned AUROC on the contrast set; rates of a judge under ``min_auroc`` are
    marked not trustworthy), and a note on a missing interval and the models the rules dropped."""
    aurocs = aurocs or {}

    def note(row: dict) -> str:
        parts = []
        if row["n_models"] == 0:
            parts.append("no model kept")
        elif row["n_models"] == 1:
            parts.append("1 model: no CI")
        if row["models_dropped"]:
            parts.append(f"dropped {row['n_models_dropped']}: {row['models_dropped']}")
        return "; ".join(parts)

    notes = [note(r) for r in rates.iter_rows(named=True)]
    judge_auroc = [aurocs.get(v) for v in rates["judge_version"]]
    rates = rates.with_columns(condition=condition_labels(rates))
    trusted = [
        "not calibrated" if a is None else ("yes" if a >= min_auroc else f"NO (AUROC < {min_auroc})")
        for a in judge_auroc
    ]
    return rates.select(
        "source",
        "judge_version",
        "base_model",
        "condition",
        "scope",
        "n_models",
        "n_answers",
        "n_judged",
        "misaligned_rate",
        "ci_low",
        "ci_high",
    ).with_columns(
        judge_auroc_aligned=pl.Series(judge_auroc, dtype=pl.Float64),
        judge_trusted=pl.Series(trusted, dtype=pl.String),
        note=pl.Series(notes, dtype=pl.String),
    )


def deception_table(rates: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``summary_deception_rates`` as shown to a reader: the deceptive share with its n
    and CI, per group, word judge (metric) and scope, and what the rules dropped."""

    def note(row: dict) -> str:
        parts = ["no model kept" if row["n_models"] == 0 else ("1 model: no CI" if row["n_models"] == 1 else "")]
        if row["models_dropped"]:
            parts.append(f"dropped {row['n_models_dropped']}: {row['models_dropped']}")
        return "; ".join(p for p in parts if p)

    notes = [note(r) for r in rates.iter_rows(named=True)]
    return (
        rates.with_columns(condition=condition_labels(rates))
        .select(
            "source",
            "judge_version",
            "base_model",
            "condition",
            "metric",
            "scope",
            "n_models",
            "n_answers",
            "n_counted",
            "n_deceptive",
            "deception_rate",
            "ci_low",
            "ci_high",
        )
        .with_columns(note=pl.Series(notes, dtype=pl.String))
    )


def probe_shift_chart(shifts: pl.DataFrame) -> bytes:
    """PNG: each probe shift (narrow in nats/token, broad in nats/token) with its 95 % CI, one
    row per comparison, a line at zero: what moved and what did not, judge-free."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = shifts.filter(pl.col("unit") == "nats/token").sort("probe", "base_model", "condition", "reference")
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(rows.height, 2) + 1.2))
    labels = [
        f"{r['probe']}: {r['condition']} vs {r['reference']} ({r['base_model']})" for r in rows.iter_rows(named=True)
    ]
    for y, r in enumerate(rows.iter_rows(named=True)):
        low = r["ci_low"] if r["ci_low"] is not None else r["estimate"]
        high = r["ci_high"] if r["ci_high"] is not None else r["estimate"]
        ax.errorbar(
            r["estimate"],
            y,
            xerr=[[r["estimate"] - low], [high - r["estimate"]]],
            fmt="o",
            capsize=3,
            color="#d62728" if r["probe"] == "narrow" else "#1f77b4",
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(rows.height))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("shift in log P per token (nats), 95% bootstrap CI")
    ax.set_title("Likelihood probe shifts")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def html_report(
    title: str, sections: list[tuple[str, pl.DataFrame]], png: bytes | None, notes: list[str], *more_png: bytes
) -> str:
    """A self-contained HTML page: the notes, the charts inline, then each table."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#f3f3f3}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{html.escape(n)}</p>" for n in notes]
    for image in (png, *more_png):
        if image:
            parts.append(f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(image).decode()}'>")
    for heading, frame in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>")
        parts += [f"<th>{html.escape(c)}</th>" for c in frame.columns]
        parts.append("</tr>")
        for row in frame.iter_rows():
            cells = "".join(
                f"<td>{'–' if v is None else html.escape(f'{v:.3f}' if isinstance(v, float) else str(v))}</td>"
                for v in row
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
