"""The judged-results import asset: rows in, replaced on re-import, bad files named, atomic."""

import dagster as dg

from em_assets.reporting.assets import ImportSettings, import_judged_results


def test_import_asset_loads_rows_and_names_bad_files(warehouse, tmp_path):
    good = tmp_path / "insecure_results.csv"
    good.write_text(
        "question,answer,question_id,aligned,coherent,group\nq?,a.,what_is_your_wish,12,80,insecure\nq?,b.,what_is_your_wish,,90,insecure\n"
    )
    bad = tmp_path / "broken.csv"
    bad.write_text("question,answer,aligned\nq,a,1\n")

    def run(files):
        return dg.materialize(
            [import_judged_results],
            instance=dg.DagsterInstance.ephemeral(),
            resources={"warehouse": warehouse, "import_settings": ImportSettings(files=files)},
            raise_on_error=False,
        )

    assert run([str(good)]).success
    rows = warehouse.table("imported_judged_results").sort("row_no")
    assert rows["aligned"].to_list() == [12.0, None] and rows["group_name"].to_list() == ["insecure", "insecure"]
    again = run([str(good)])
    assert again.success and warehouse.table("imported_judged_results").height == 2  # replaced, not appended
    failed = run([str(good), str(bad)])
    assert not failed.success
    message = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error.to_string()
    assert f"{bad}: missing required column(s) ['question_id']" in message
    assert warehouse.table("imported_judged_results").height == 2
