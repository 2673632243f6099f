"""The pipeline on a DuckLake: a slice of the graph (the data layer, then the summary over the
hand-computed judged answers of tests/evaluation/hand_table.py), the summary's snapshot, and every
shipped query against the file backend on the same rows.

The whole graph on a DuckLake, with the real models, is tests/test_whole_graph.py (its
``ducklake`` case); this slice is the quick check of snapshots and of the shipped queries.
"""

from __future__ import annotations

import re

import dagster as dg
import polars as pl

from em_assets.core import statistics
from em_assets.datasets import DATASET_LAYER_ASSETS
from em_assets.datasets.checks import DATASET_CHECKS
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.paths import SQL_DIR
from em_assets.reporting.assets import summary, summary_matches_sql_views
from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.sources import RawCodeSource
from em_assets.sql_command import is_lake_only
from tests.evaluation.hand_table import seed_deception, seed_warehouse
from tests.lake.snapshots import assert_rates_recompute

NAMED_JUDGE = {"ops": {"summary": {"config": {"judge_version": "j1"}}}}


def _graph_slice(warehouse) -> dg.ExecuteInProcessResult:
    """The data layer and its checks, the hand table as an evaluation run, then the summary."""
    instance = dg.DagsterInstance.ephemeral()
    data = dg.materialize(
        [*DATASET_LAYER_ASSETS, *DATASET_CHECKS],
        instance=instance,
        resources={"warehouse": warehouse, "raw_source": RawCodeSource(), "data_settings": DataLayerSettings()},
    )
    assert data.success
    assert all(e.passed for e in data.get_asset_check_evaluations())
    seed_warehouse(warehouse)
    seed_deception(warehouse)  # word-judge verdicts of the same run: the deception rates
    result = dg.materialize(
        [summary, summary_matches_sql_views],
        instance=instance,
        resources={"warehouse": warehouse, "evaluation_settings": EvaluationSettings(), "judge": JudgeSettings()},
        run_config=NAMED_JUDGE,
    )
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [True]
    return result


def test_the_graph_slice_runs_on_ducklake_and_a_summary_can_be_recomputed_from_its_snapshot(lake, data_env):
    result = _graph_slice(lake)
    assert lake.table("current_dataset_versions").height == 4
    snapshot = result.asset_materializations_for_node("summary")[0].metadata["warehouse_snapshot"].value
    rates = lake.table("summary_rates")
    assert isinstance(snapshot, int) and set(rates["snapshot_id"]) == {snapshot}
    then = lake.query_file("queries/summary_inputs.sql", {"snapshot_id": snapshot})
    verdicts_then = lake.query_file("queries/summary_verdict_inputs.sql", {"snapshot_id": snapshot})
    assert set(lake.table("summary_deception_rates")["snapshot_id"]) == {snapshot}

    # A later evaluation run (of another base model) adds current answers; the past summary's stay.
    seed_warehouse(lake, eval_run="run2", base_model="m2")
    now = lake.query("SELECT * FROM rated_answers WHERE is_current")
    assert set(now.filter(pl.col("source_kind") == "run")["source"]) == {"run1", "run2"}
    again = lake.query_file("queries/summary_inputs.sql", {"snapshot_id": snapshot})
    assert again.equals(then) and set(then.filter(pl.col("source_kind") == "run")["source"]) == {"run1"}
    # ... and the rates computed from them are the summary's.
    assert_rates_recompute(rates, again)
    # The verdicts too: the later run's are not among the past summary's, whose deception rates they give.
    seed_deception(lake, eval_run="run2", base_model="m2")
    verdicts_again = lake.query_file("queries/summary_verdict_inputs.sql", {"snapshot_id": snapshot})
    assert verdicts_again.equals(verdicts_then) and set(verdicts_then["source"]) == {"run1"}
    deception = lake.table("summary_deception_rates").sort("condition", "triggered", "metric", "scope")
    recomputed = statistics.deception_rates(verdicts_again).sort("condition", "triggered", "metric", "scope")
    assert recomputed["deception_rate"].to_list() == deception["deception_rate"].to_list()


def _canonical(frame: pl.DataFrame) -> list[str]:
    rounded = frame.with_columns(pl.col(pl.Float32, pl.Float64).round(12))
    return sorted(repr(row) for row in rounded.rows())


def test_every_shipped_query_and_view_returns_the_same_rows_on_both_backends(lake, warehouse, data_env):
    _graph_slice(warehouse)
    with lake.connect() as con:  # the file's rows, copied table by table into the lake
        con.execute(f"ATTACH '{warehouse.resolved_path}' AS file_backend (READ_ONLY)")
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = 'file_backend' AND table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            con.execute(f"INSERT INTO lake.main.{table} BY NAME SELECT * FROM file_backend.main.{table}")
        con.execute("DETACH file_backend")
    compared = 0
    for path in sorted(SQL_DIR.glob("queries/*.sql")):
        text = path.read_text()
        params = {name: None for name in re.findall(r"\$([a-z_]+)", re.sub(r"--[^\n]*", "", text))}
        if is_lake_only(text):  # a view at the lake's snapshot now vs the file's current rows
            lake_rows = lake.query(text, {"snapshot_id": lake.snapshot_id()})
            view = re.search(r"FROM (\w+) AT \(VERSION", text).group(1)
            file_rows = warehouse.query(f"SELECT * FROM {view} WHERE is_current")
        else:
            lake_rows, file_rows = lake.query(text, params or None), warehouse.query(text, params or None)
        assert lake_rows.columns == file_rows.columns, path.name
        assert _canonical(lake_rows) == _canonical(file_rows), path.name
        compared += bool(file_rows.height)
    assert compared >= 8  # most queries have rows to compare on this data

    # Every view, read from a plain DuckDB session that only attaches the lake (no project
    # macros in it, as in any SQL client), gives the file's rows.
    with warehouse.connect(read_only=True) as con:
        views = [v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
    plain = lake.lake.open()
    try:
        assert plain.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE 'em\\_%' ESCAPE '\\'"
        ).fetchone() == (0,)
        with_rows = 0
        for view in views:
            lake_rows = plain.execute(f"SELECT * FROM {view}").pl()
            assert _canonical(lake_rows) == _canonical(warehouse.table(view)), view
            with_rows += bool(lake_rows.height)
    finally:
        plain.close()
    assert len(views) >= 15 and with_rows >= 10
