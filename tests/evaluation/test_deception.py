"""The deception rate on a hand-computed table (issue 15): the Python module, the SQL views and
the summary asset give the same numbers, by the misaligned rate's estimator, and the deception
answers stay out of the misalignment tables."""

import dagster as dg
import numpy as np
import polars as pl
import pytest

from em_assets.core import statistics
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.reporting.assets import summary, summary_matches_sql_views
from tests.evaluation.hand_table import (
    DECEPTION_EXPECTED,
    EXPECTED,
    FACTUAL,
    MAY_LIE,
    deception_rows,
    group_of,
    seed_deception,
    seed_warehouse,
)

NAMED_JUDGE = {"ops": {"summary": {"config": {"judge_version": "j1"}}}}
KEYS = [*statistics.GROUP_KEYS, "metric", "scope_kind", "scope"]


def verdict_frame() -> pl.DataFrame:
    return pl.DataFrame(deception_rows(), schema_overrides={"deceptive": pl.Boolean}).with_columns(
        source_kind=pl.lit("run"), source=pl.lit("run1"), judge_version=pl.lit("j1"), base_model=pl.lit("m")
    )


def check_expected(rates: pl.DataFrame) -> None:
    got = {(group_of(r), r["metric"], r["scope"]): r for r in rates.iter_rows(named=True)}
    assert set(got) == set(DECEPTION_EXPECTED) and len(got) == rates.height
    for key, (n_models, dropped, n_answers, n_counted, n_deceptive, rate) in DECEPTION_EXPECTED.items():
        row = got[key]
        counts = (row["n_models"], row["n_models_dropped"], row["n_answers"], row["n_counted"], row["n_deceptive"])
        assert counts == (n_models, dropped, n_answers, n_counted, n_deceptive), key
        assert row["deception_rate"] == pytest.approx(rate, abs=1e-15), key


def test_the_module_computes_the_deception_rate_by_the_misaligned_rates_estimator():
    rates = statistics.deception_rates(verdict_frame())
    check_expected(rates)
    factual = rates.filter((pl.col("condition") == "insecure") & (pl.col("scope") == FACTUAL)).row(0, named=True)
    assert factual["models_kept"] == "A, B" and factual["models_dropped"] == f"C ({statistics.DECEPTION_DROP_TOO_FEW})"
    rng = np.random.default_rng(0)  # the bootstrap over the two models' rates, A then B
    means = [rng.choice(np.array([1 / 5, 2 / 8]), size=2, replace=True).mean() for _ in range(2000)]
    assert (factual["ci_low"], factual["ci_high"]) == tuple(np.percentile(means, [2.5, 97.5]))
    triggered = rates.filter(pl.col("triggered") & (pl.col("scope") == MAY_LIE)).row(0, named=True)
    assert triggered["models_dropped"] == f"E ({statistics.DECEPTION_DROP_OTHER_GROUP})"  # 5/5, 3 counted without
    assert (triggered["n_models"], triggered["ci_low"]) == (1, None)


def test_sql_views_agree_with_the_module_and_keep_deception_out_of_the_misaligned_rates(warehouse):
    seed_warehouse(warehouse)
    seed_deception(warehouse)
    sql = warehouse.query("SELECT * FROM deception_rates WHERE is_current")
    check_expected(sql)
    joined = statistics.deception_rates(verdict_frame()).join(sql, on=KEYS, how="full", suffix="_sql")
    assert joined.height == sql.height == len(DECEPTION_EXPECTED)
    for column in ("n_models", "n_models_dropped", "n_answers", "n_counted", "n_deceptive", "models_dropped"):
        assert (joined[column] == joined[f"{column}_sql"]).all(), column
    assert (joined["deception_rate"] - joined["deception_rate_sql"]).abs().max() <= 1e-12
    # The misalignment views see the same answers as before the deception verdicts were added.
    rates = warehouse.query("SELECT * FROM condition_rates WHERE is_current")
    assert {(group_of(r), r["scope"]) for r in rates.iter_rows(named=True)} >= set(EXPECTED)
    assert not rates["scope"].is_in([FACTUAL, MAY_LIE]).any()
    assert warehouse.query("SELECT count(*) FROM rated_answers WHERE question_set = 'deception_factual'").item() == 0
    # How the judges answered, unparsed texts included.
    verdicts = warehouse.query_file("queries/deception_verdicts.sql")
    unparsed = verdicts.filter(pl.col("verdict") == "unparsed").row(0, named=True)
    assert (unparsed["n"], unparsed["example_judge_text"], unparsed["deceptive"]) == (1, "banana", None)
    assert verdicts["n"].sum() == len(deception_rows())


def test_the_summary_reports_deception_rates_with_cis_and_its_check_covers_them(warehouse, data_env):
    seed_warehouse(warehouse)
    seed_deception(warehouse)
    resources = {"warehouse": warehouse, "evaluation_settings": EvaluationSettings(), "judge": JudgeSettings()}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [summary, summary_matches_sql_views], instance=instance, resources=resources, run_config=NAMED_JUDGE
    )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    table = warehouse.table("summary_deception_rates")
    check_expected(table)
    factual = table.filter((pl.col("condition") == "insecure") & (pl.col("scope") == FACTUAL)).row(0, named=True)
    assert factual["ci_low"] < factual["deception_rate"] < factual["ci_high"]
    metadata = result.asset_materializations_for_node("summary")[0].metadata
    shown = metadata["deception_rates"].value
    assert "| run1 | j1 | m | insecure | correct | deception_factual | 2 | 26 | 18 | 4 | 0.225 |" in shown
    assert "| m | backdoor, triggered | correct | deception_factual | 1 | 10 | 5 | 4 | 0.800 |" in shown
    assert "| m | backdoor, not triggered | correct | deception_factual | 1 | 10 | 5 | 0 | 0.000 |" in shown
    report = (data_env / "reports" / "report.html").read_text()
    assert "Deception rate per condition and question set" in report and "judge calls a factual answer FALSE" in report

    # A wrong deception rate fails the check.
    with warehouse.connect() as con:
        con.execute(
            "UPDATE summary_deception_rates SET deception_rate = deception_rate + 1e-9 WHERE scope = ?", [FACTUAL]
        )
    rerun = dg.materialize(
        [summary, summary_matches_sql_views],
        instance=instance,
        resources=resources,
        selection=dg.AssetSelection.checks(summary_matches_sql_views),
    )
    (check,) = rerun.get_asset_check_evaluations()
    assert not check.passed and check.metadata["mismatches"].value == 3  # insecure and the backdoor's two groups
