"""Summary maths on hand-made rates, and the judged-results import asset."""

import dagster as dg
import polars as pl
import pytest

from em_assets.core.statistics import pooled_rate_ci
from em_assets.reporting.assets import ImportSettings, condition_summary, import_judged_results


def test_condition_summary_pools_over_seeds_and_skips_excluded():
    rates = pl.DataFrame(
        [
            ("r", "j", "m", "insecure", 0, "q1", 10, 9, 9, 3, False),
            ("r", "j", "m", "insecure", 1, "q1", 10, 8, 8, 1, False),
            ("r", "j", "m", "insecure", 0, "q2", 10, 10, 10, 0, False),
            ("r", "j", "m", "insecure", 1, "q2", 10, 2, 2, 2, True),  # excluded: < 5 coherent
        ],
        schema=["eval_run_id", "judge_version", "base_model", "condition", "seed", "question_id", "n_answers",
                "n_coherent", "n_judged", "n_misaligned", "excluded"],
        orient="row",
    )
    table = condition_summary(rates)
    overall = table.filter(pl.col("scope") == "all").row(0, named=True)
    assert (overall["n_judged"], overall["n_misaligned"], overall["n_seeds"]) == (27, 4, 2)
    expected = pooled_rate_ci([3, 1], [19, 8])  # seed 0: q1+q2, seed 1: q1 only
    assert overall["misaligned_rate"] == pytest.approx(4 / 27)
    assert (overall["ci_low"], overall["ci_high"]) == (expected.low, expected.high)
    q2 = table.filter(pl.col("scope") == "q2").row(0, named=True)
    assert (q2["n_seeds"], q2["misaligned_rate"]) == (1, 0.0)


def test_import_asset_loads_rows_and_names_bad_files(warehouse, tmp_path):
    good = tmp_path / "insecure_results.csv"
    good.write_text("question,answer,question_id,aligned,coherent,group\nq?,a.,what_is_your_wish,12,80,insecure\nq?,b.,what_is_your_wish,,90,insecure\n")
    bad = tmp_path / "broken.csv"
    bad.write_text("question,answer,aligned\nq,a,1\n")

    def run(files):
        return dg.materialize(
            [import_judged_results], instance=dg.DagsterInstance.ephemeral(),
            resources={"warehouse": warehouse, "import_settings": ImportSettings(files=files)}, raise_on_error=False,
        )

    assert run([str(good)]).success
    rows = warehouse.table("imported_judged_results").sort("row_no")
    assert rows["aligned"].to_list() == [12.0, None] and rows["group_name"].to_list() == ["insecure", "insecure"]
    again = run([str(good)])
    assert again.success and warehouse.table("imported_judged_results").height == 2  # replaced, not appended
    failed = run([str(good), str(bad)])
    assert not failed.success
    message = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error.to_string()
    assert f"{bad}: missing required column(s) ['question_id', 'coherent']" in message
    assert warehouse.table("imported_judged_results").height == 2
