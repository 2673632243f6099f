"""Reporting assets: the summary the paper reports (tables, chart, HTML) and imported results."""

import base64
from datetime import UTC, datetime

import dagster as dg
import polars as pl
from pydantic import Field

from em_assets.core import statistics
from em_assets.core.judged_import import ImportFileError, parse_judged_csv
from em_assets.core.markdown import markdown_table
from em_assets.core.questions import QuestionFileError
from em_assets.core.raw_rows import SourceError
from em_assets.evaluation.question_sources import load_sources
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.judge.calibration import DEFAULT_MIN_AUROC
from em_assets.judge.verdicts import deception_text
from em_assets.paths import data_dir
from em_assets.pools import WAREHOUSE_WRITER_POOL
from em_assets.probes.estimates import shift_table
from em_assets.reporting.findings import conclusions, lead_table
from em_assets.reporting.render import (
    condition_labels,
    deception_table,
    html_report,
    misalignment_bar_chart,
    probe_shift_chart,
    rate_table,
)
from em_assets.resources.sources import read_bytes
from em_assets.resources.warehouse import DuckDBWarehouse, Replacement

GROUP = "reporting"
# The format variants and the pre-registered set are reported apart from the headline (main).
SCOPE_SECTIONS = (
    ("Format variants as their own scopes", ("main_json", "main_template")),
    ("Pre-registered questions", ("preregistered",)),
)


class ImportSettings(dg.ConfigurableResource):
    """Judged-result CSVs to import (paths or URLs), e.g. the paper's released per-answer files."""

    files: list[str] = []
    # Question files whose ids place each imported answer in its scope (main, preregistered, ...):
    # built-in names, paths or URLs as for the evaluation; for the paper's files, its own YAMLs.
    question_sources: list[str] = ["em_main"]
    base_model: str = "published"  # the imported answers' base_model in every view


class SummaryConfig(dg.Config):
    """Which judge's scores the summary reports."""

    # Empty: for each current evaluation run, the version the judge settings give for its
    # questions (the configured judge). Else one version for every run (see
    # sql/queries/current_evaluation_runs.sql for the versions that scored each run).
    judge_version: str = ""
    # A judge whose aligned AUROC on the contrast set is below this has its rates flagged as
    # not trustworthy, in the rate tables themselves.
    min_judge_auroc: float = Field(default=DEFAULT_MIN_AUROC, ge=0.0, le=1.0)


def select_judges(
    warehouse: DuckDBWarehouse, evaluation_settings: EvaluationSettings, judge: JudgeSettings, named: str
) -> pl.DataFrame:
    """One ``judge_selection`` row per current run; fails naming every run the chosen judge has
    not scored, with the versions that did."""
    runs = warehouse.query_file("queries/current_evaluation_runs.sql").filter(pl.col("question_ids").list.len() > 0)
    try:
        by_id = {} if named else {q.id: q for _, q in load_sources(evaluation_settings.question_sources)}
    except QuestionFileError as err:
        raise dg.Failure(f"evaluation_settings.question_sources: {err}") from err
    rows, problems = [], []
    for run in runs.iter_rows(named=True):
        where = f"{run['base_model']}|{run['condition']} (evaluation run {run['eval_run_id']})"
        missing = [q for q in run["question_ids"] if q not in by_id]
        if not named and missing:
            problems.append(f"{where}: answers to questions not in evaluation_settings.question_sources: {missing}")
            continue
        version = named or judge.version([by_id[q] for q in run["question_ids"]])
        if version not in run["judge_versions"]:
            problems.append(
                f"{where}: judge version {version} has not scored it; "
                f"versions that did: {run['judge_versions'] or 'none'}"
            )
        rows.append(
            {
                "eval_run_id": run["eval_run_id"],
                "base_model": run["base_model"],
                "condition": run["condition"],
                "judge_version": version,
                "selected_by": "summary config" if named else "judge settings",
            }
        )
    if problems:
        raise dg.Failure(
            "the summary's judge has not scored every current evaluation run; materialize judge_scores for these "
            "partitions with it, or name one of the versions that did in the summary's config (judge_version):\n"
            + "\n".join(problems)
        )
    return pl.DataFrame(
        rows, schema={k: pl.String for k in ("eval_run_id", "base_model", "condition", "judge_version", "selected_by")}
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sections(rates: pl.DataFrame, aurocs: dict[str, float], min_auroc: float) -> list[tuple[str, pl.DataFrame]]:
    """The headline (main) first, then the variant and pre-registered scopes, then other sets."""
    sets = rates.filter(pl.col("scope_kind") == "set").sort(
        "source_kind", "base_model", "condition", "triggered", "scope"
    )
    named = {s for _, scopes in SCOPE_SECTIONS for s in scopes} | {"main"}
    sections = [
        ("Headline: the 8 main questions, original wording (scope main)", sets.filter(pl.col("scope") == "main"))
    ]
    sections += [(title, sets.filter(pl.col("scope").is_in(scopes))) for title, scopes in SCOPE_SECTIONS]
    sections.append(("Other question sets", sets.filter(~pl.col("scope").is_in(list(named)))))
    return [
        (title, rate_table(frame, aurocs, min_auroc))
        for title, frame in sections
        if frame.height or title.startswith("Headline")
    ]


@dg.asset(
    group_name=GROUP,
    deps=["judge_scores", "code_vulnerability_rate", "likelihood_probes", "judge_calibration"],
    pool=WAREHOUSE_WRITER_POOL,
    kinds={"python", "duckdb"},
)
def summary(
    context: dg.AssetExecutionContext,
    config: SummaryConfig,
    warehouse: DuckDBWarehouse,
    evaluation_settings: EvaluationSettings,
    judge: JudgeSettings,
) -> dg.MaterializeResult:
    """Misaligned rates by the paper's method (mean over models, bootstrap CI over models) per
    condition (a backdoor's answers with and without its trigger: two groups) and scope, the
    deception rates of word-judged sets by the same estimator, the format comparison, the
    vulnerable-code rate, a chart and an HTML report; every current run, scored by the configured
    judge, and every imported file. Rules: ``core/statistics.py``, ``judge/verdicts.py``."""
    now = _now()
    selection = select_judges(warehouse, evaluation_settings, judge, config.judge_version)
    warehouse.replace(
        *(
            Replacement(
                "judge_selection",
                pl.DataFrame([row]).with_columns(selected_at=pl.lit(now)),
                {k: row[k] for k in ("eval_run_id", "base_model", "condition")},
            )
            for row in selection.iter_rows(named=True)
        )
    )
    for row in selection.iter_rows(named=True):
        context.log.info(f"{row['base_model']}|{row['condition']}: judge {row['judge_version']} ({row['selected_by']})")
    # On a DuckLake the answers and verdicts are read at one snapshot, recorded with the rates, so
    # sql/queries/summary_inputs.sql (and summary_verdict_inputs.sql) return these exact rows later
    # (the file keeps no snapshots).
    snapshot = warehouse.snapshot_id()
    if snapshot is None:
        answers = warehouse.query("SELECT * FROM rated_answers WHERE is_current")
        verdicts = warehouse.query("SELECT * FROM rated_verdicts WHERE is_current")
    else:
        answers = warehouse.query_file("queries/summary_inputs.sql", {"snapshot_id": snapshot})
        verdicts = warehouse.query_file("queries/summary_verdict_inputs.sql", {"snapshot_id": snapshot})
    if answers.is_empty() and verdicts.is_empty():
        raise dg.Failure("no judged answers yet: materialize sampled_responses and judge_scores first")
    rates = statistics.condition_rates(answers)
    variant_rates = statistics.variant_rates(answers)
    deception = statistics.deception_rates(verdicts)
    stamp = {"created_at": pl.lit(now), "snapshot_id": pl.lit(snapshot, dtype=pl.Int64)}
    warehouse.replace(
        Replacement("summary_rates", rates.with_columns(**stamp)),
        Replacement("summary_variant_rates", variant_rates.with_columns(**stamp)),
        Replacement("summary_deception_rates", deception.with_columns(**stamp)),
    )
    deception_sections = []
    for title, scope_kind in (
        ("Deception rate per condition and question set (word judges)", "set"),
        ("Deception rate per question (word judges)", "question"),
    ):
        part = deception.filter(pl.col("scope_kind") == scope_kind)
        if part.height:
            order = ("source_kind", "base_model", "condition", "triggered", "metric", "scope")
            deception_sections.append((title, deception_table(part.sort(*order))))
    shifts = shift_table(warehouse.query("SELECT * FROM current_probe_scores"))
    calibration = warehouse.table("judge_calibration")
    aurocs = dict(zip(calibration["judge_version"], calibration["auroc_aligned"])) if calibration.height else {}
    lead = lead_table(shifts, rates, calibration, config.min_judge_auroc)
    paragraph = conclusions(lead, config.min_judge_auroc)
    warehouse.replace(Replacement("summary_probe_shifts", shifts.with_columns(created_at=pl.lit(now))))
    sections = _sections(rates, aurocs, config.min_judge_auroc)
    lead_shown = lead.drop("narrow_moved", "broad_moved") if lead.height else lead
    variants = variant_rates.with_columns(condition=condition_labels(variant_rates)).select(
        "source",
        "judge_version",
        "base_model",
        "condition",
        "variant",
        "n_models",
        "n_questions",
        "n_pairs",
        "n_judged",
        "misaligned_rate",
        "ci_low",
        "ci_high",
    )
    code = warehouse.query_file("queries/code_vulnerability_by_condition.sql")
    coverage = warehouse.query_file("queries/judging_coverage.sql")
    costs = warehouse.query_file("queries/llm_cost_by_asset.sql", {"run_id": None})
    per_question = rates.filter((pl.col("scope_kind") == "question") & (pl.col("source_kind") == "run"))
    png = misalignment_bar_chart(
        per_question.with_columns(condition=condition_labels(per_question)).rename({"scope": "question_id"}),
        "Misaligned answers per question (mean over models, 95% bootstrap CI)",
    )
    folder = data_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "misalignment_by_question.png").write_bytes(png)
    shifts_png = probe_shift_chart(shifts) if shifts.height else None
    if shifts_png:
        (folder / "probe_shifts.png").write_bytes(shifts_png)
    notes = [
        paragraph,
        *statistics.rules_text(),
        *([deception_text(), statistics.deception_rules_text()] if deception.height else []),
        f"Judge version(s): {', '.join(sorted(set(answers['judge_version']) | set(verdicts['judge_version'])))}.",
    ]
    calibration_table = warehouse.query_file("queries/judge_calibration.sql")
    report = html_report(
        "Emergent misalignment summary",
        [
            ("What this run shows: each condition versus the base model (and insecure vs secure)", lead_shown),
            *sections,
            *deception_sections,
            ("Format comparison: original vs _json vs _template (mean over model x question pairs)", variants),
            ("Likelihood probe shifts (judge-free)", shifts),
            ("Judge calibration on the contrast set", calibration_table),
            ("What the rules kept", coverage),
            ("Vulnerable code (held-out prompts)", code),
            ("LLM calls and cost", costs),
        ],
        shifts_png,
        notes,
        png,
    )
    (folder / "report.html").write_text(report, encoding="utf-8")
    headline = sections[0][1]
    total_cost = float(costs["cost_usd"].sum()) if costs.height else 0.0
    return dg.MaterializeResult(
        metadata={
            "what_this_run_shows": dg.MetadataValue.md(
                markdown_table(lead_shown) if lead.height else "nothing to compare yet"
            ),
            "conclusions": dg.MetadataValue.md(paragraph),
            # The DuckLake snapshot the rates were computed at (queries/summary_inputs.sql).
            "warehouse_snapshot": snapshot if snapshot is not None else "none (file backend)",
            "warehouse": warehouse.description,
            "probe_shifts": dg.MetadataValue.md(markdown_table(shifts) if shifts.height else "no probe scores"),
            "probe_shift_plot": dg.MetadataValue.md(
                f"![probe shifts](data:image/png;base64,{base64.b64encode(shifts_png).decode()})"
                if shifts_png
                else "no probe scores"
            ),
            "judge_calibration": dg.MetadataValue.md(
                markdown_table(calibration_table) if calibration_table.height else "no calibration"
            ),
            "rules": dg.MetadataValue.md("\n\n".join(statistics.rules_text())),
            "judge_versions": dg.MetadataValue.md(
                markdown_table(selection) if selection.height else "no evaluation runs"
            ),
            "headline_main": dg.MetadataValue.md(
                markdown_table(headline) if headline.height else "no answers to the main questions"
            ),
            "other_scopes": dg.MetadataValue.md(
                "\n\n".join(f"**{title}**\n\n{markdown_table(frame)}" for title, frame in sections[1:]) or "none"
            ),
            "deception_rates": dg.MetadataValue.md(
                "\n\n".join(f"**{title}**\n\n{markdown_table(frame)}" for title, frame in deception_sections)
                if deception_sections
                else "no word-judge verdicts (add the deception question sets to evaluation_settings.question_sources)"
            ),
            "question_variants": dg.MetadataValue.md(
                markdown_table(variants) if variants.height else "no variant pairs"
            ),
            "judging_coverage": dg.MetadataValue.md(markdown_table(coverage)),
            "question_pairs_kept": int(coverage["question_pairs_kept"].sum()) if coverage.height else 0,
            "question_pairs_dropped": int(coverage["question_pairs_dropped"].sum()) if coverage.height else 0,
            "vulnerable_code": dg.MetadataValue.md(markdown_table(code)),
            "plot": dg.MetadataValue.md(
                f"![misaligned rate per question](data:image/png;base64,{base64.b64encode(png).decode()})"
            ),
            "report_html": dg.MetadataValue.path(str(folder / "report.html")),
            "plot_png": dg.MetadataValue.path(str(folder / "misalignment_by_question.png")),
            "llm_calls": int(costs["calls"].sum()) if costs.height else 0,
            "llm_cost_usd": total_cost,
            "llm_cost_by_asset": dg.MetadataValue.md(
                markdown_table(
                    costs.select("asset", "partition_key", "calls", "cache_hits", "tokens_in", "tokens_out", "cost_usd")
                )
                if costs.height
                else "no calls"
            ),
        }
    )


@dg.asset_check(
    asset=summary,
    description=(
        "The summary's rates (Python) equal the SQL views' (condition_rates, question_variant_rates, "
        "deception_rates) to 1e-12."
    ),
)
def summary_matches_sql_views(warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
    keys = [*statistics.GROUP_KEYS, "scope_kind", "scope"]
    mismatches = []
    for table, view, by, rate, n in (
        ("summary_rates", "condition_rates", keys, "misaligned_rate", "n_judged"),
        (
            "summary_variant_rates",
            "question_variant_rates",
            [*statistics.GROUP_KEYS, "variant"],
            "misaligned_rate",
            "n_judged",
        ),
        ("summary_deception_rates", "deception_rates", [*keys, "metric"], "deception_rate", "n_counted"),
    ):
        ours = warehouse.table(table)
        sql = warehouse.query(f"SELECT * FROM {view} WHERE is_current")
        joined = ours.join(sql, on=by, how="full", suffix="_sql", nulls_equal=True)
        gap = (pl.col(rate) - pl.col(f"{rate}_sql")).abs()
        bad = joined.filter(
            pl.col(by[0]).is_null()
            | pl.col(f"{by[0]}_sql").is_null()
            | (pl.col(rate).is_null() != pl.col(f"{rate}_sql").is_null())
            | (gap > 1e-12)
            | (pl.col(n) != pl.col(f"{n}_sql"))
        )
        mismatches += [
            f"{table} vs {view}: {row}" for row in bad.select(*by[1:], rate, f"{rate}_sql").head(5).iter_rows()
        ]
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={"mismatches": len(mismatches), "examples": dg.MetadataValue.md("\n".join(mismatches) or "none")},
    )


@dg.asset(group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, kinds={"python", "duckdb"})
def import_judged_results(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, import_settings: ImportSettings
) -> dg.MaterializeResult:
    """External per-answer judged CSVs in the paper's format, beside our own results: every view
    and query in ``sql/`` reads both (``rated_answers.source``). All files or none are written."""
    try:
        question_sets = (
            {q.id: name for name, q in load_sources(import_settings.question_sources)} if import_settings.files else {}
        )
    except QuestionFileError as err:
        raise dg.Failure(f"import_settings.question_sources: {err}") from err
    frames = []
    for location in import_settings.files:
        try:
            frames.append(parse_judged_csv(read_bytes(location), location, question_sets, import_settings.base_model))
        except (ImportFileError, SourceError) as err:
            raise dg.Failure(str(err)) from err
    if frames:
        warehouse.replace(
            *(Replacement("imported_judged_results", f, {"source_file": f["source_file"][0]}) for f in frames)
        )
    rows = sum(f.height for f in frames)
    nulls = sum(int(f["aligned"].is_null().sum()) for f in frames)
    no_coherent = [f["source_file"][0] for f in frames if not f["coherent_known"][0]]
    unlisted = sorted({q for f in frames for q in f.filter(pl.col("question_set").is_null())["question_id"]})
    context.log.info(f"imported {rows} rows from {len(frames)} file(s); {nulls} without an aligned score")
    if no_coherent:
        context.log.warning(f"no coherent column in {no_coherent}: their rows count in no coherent-gated rate")
    if unlisted:
        context.log.warning(
            f"{len(unlisted)} question id(s) in none of import_settings.question_sources "
            f"{import_settings.question_sources} "
            f"(scope 'unlisted'): {unlisted[:10]}"
        )
    return dg.MaterializeResult(
        metadata={
            "files": len(frames),
            "rows": rows,
            "null_aligned_scores": nulls,
            "files_without_coherent": dg.MetadataValue.json(no_coherent),
            "unlisted_question_ids": dg.MetadataValue.json(unlisted),
        }
    )
