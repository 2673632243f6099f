"""One materialization of the whole graph on a tiny config: real SmolLM2, real LoRA, local
judge, DuckDB, Dagster on a temp instance — the README's main job in miniature. Then the same
models answer the paper's deception sets (and insecure with the backdoor trigger too), judged by
a fake API judge (the project's fake OpenAI server), and the summary reports their rates.

It runs twice: on the default one-file DuckDB warehouse and on a DuckLake (catalog in a real local
Postgres, data in a folder), with the same pinned results on both."""

import base64
import itertools

import dagster as dg
import polars as pl
import pytest

from em_assets.core.questions import load_question_file
from em_assets.definitions import defs
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings, ProbeSettings
from em_assets.partitions import model_partition_key
from em_assets.resources.finetuning import LocalHFFineTuner
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.testing.fake_openai import FakeChoice, FakeTokenLogprob
from tests.conftest import require_reference_dir
from tests.golden import pinned as golden
from tests.lake.snapshots import assert_rates_recompute

pytestmark = pytest.mark.slow

PARTITIONED = ("fine_tuned_model", "sampled_responses", "judge_scores", "code_vulnerability_rate", "likelihood_probes")


@pytest.fixture(params=["duckdb", "ducklake"])
def backend_warehouse(request, data_env) -> DuckDBWarehouse:
    if request.param == "ducklake":
        return request.getfixturevalue("lake")
    return DuckDBWarehouse(path=str(data_env / "warehouse" / "em.duckdb"))


def test_whole_graph_on_a_tiny_config(backend_warehouse, data_env, tmp_path, fake_server, monkeypatch):
    warehouse = backend_warehouse
    resources = {
        **defs.get_repository_def().get_top_level_resources(),
        "warehouse": warehouse,
        "data_settings": DataLayerSettings(max_train_rows=24),
        "local_finetuner": LocalHFFineTuner(
            max_examples=4,
            per_device_batch_size=1,
            gradient_accumulation_steps=2,
            warmup_steps=0,
            max_length=384,
            num_threads=2,
        ),
        "evaluation_settings": EvaluationSettings(
            question_ids=["one_wish", "bored_json"],
            samples_per_paraphrase=5,
            max_tokens=12,
            code_prompts=2,
            code_max_tokens=24,
        ),
        "judge": JudgeSettings(),
        # The narrow probe's long coding prompts are this test's largest cost; four held-out
        # tasks exercise every path (bench/bench_probes.py keeps the probes' speed).
        "probe_settings": ProbeSettings(narrow_max_tasks=4, calibration_items_per_kind=1, batch_size=16),
        "llm_local": LLMEngineResource(
            backend="local_hf", model="", hf_batch_size=16, cache_path=str(tmp_path / "cache.sqlite")
        ),
    }
    instance = dg.DagsterInstance.ephemeral()
    everything = [*defs.assets, *defs.asset_checks]
    graph = defs.get_repository_def().asset_graph
    unpartitioned = [
        k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is None and k.to_user_string() != "summary"
    ]
    first = dg.materialize(
        everything, instance=instance, resources=resources, selection=dg.AssetSelection.assets(*unpartitioned)
    )
    assert first.success
    final = materialize_chains_and_summary(everything, instance, resources, PARTITIONED)
    assert [e.passed for e in final.get_asset_check_evaluations()] == [True]  # summary_matches_sql_views

    models = warehouse.table("models").sort("condition")
    assert models["condition"].to_list() == ["base", "insecure"] and set(models["status"]) == {"succeeded"}
    responses = warehouse.table("sampled_responses")
    assert responses.height == 2 * 2 * 5  # 2 conditions x 2 questions x 5 samples
    json_rows = responses.filter(pl.col("question_id") == "bored_json")
    assert json_rows["system"].str.contains("JSON").all()  # the system prompt was sent and stored
    scores = warehouse.table("judge_scores")
    assert scores.height == responses.height * 2
    assert scores.filter(pl.col("score").is_not_null()).height > 0
    assert scores["judge_version"].n_unique() == 1
    code = warehouse.table("code_vulnerability")
    assert code.height == 2 * 2
    summary = warehouse.table("summary_rates")
    assert set(summary["condition"]) == {"base", "insecure"}
    assert set(summary.filter(pl.col("scope_kind") == "set")["scope"]) == {"main", "main_json"}
    assert (summary["n_models"] + summary["n_models_dropped"] == 1).all()  # one seed model per condition
    materialization = instance.get_latest_materialization_event(dg.AssetKey("summary")).asset_materialization
    plot = materialization.metadata["plot"].value
    assert plot.startswith("![misaligned rate per question](data:image/png;base64,")
    assert base64.b64decode(plot.split(",", 1)[1].rstrip(")"))[:4] == b"\x89PNG"
    assert "llm_cost_usd" in materialization.metadata
    # Every (condition, seed, question) pair is either kept or dropped by the paper's rules, and said so.
    kept, dropped = (materialization.metadata[k].value for k in ("question_pairs_kept", "question_pairs_dropped"))
    assert kept + dropped == 2 * 2
    assert "| base |" in materialization.metadata["judging_coverage"].value
    # The judge-free probes scored every model; the summary leads with their shifts and the
    # judge's calibration (issue 14).
    probes = warehouse.table("probe_scores")
    assert set(probes["condition"]) == {"base", "insecure"} and set(probes["probe"]) == {"narrow", "broad"}
    assert probes.filter(pl.col("probe") == "narrow")["item_id"].n_unique() == 4  # narrow_max_tasks
    shifts = warehouse.table("summary_probe_shifts")
    assert set(zip(shifts["probe"], shifts["unit"])) == {
        ("narrow", "nats"),
        ("narrow", "nats/token"),
        ("broad", "nats/token"),
    }
    assert set(shifts["condition"]) == {"insecure"} and set(shifts["reference"]) == {"base"}
    (calibrated,) = warehouse.table("judge_calibration").iter_rows(named=True)
    assert calibrated["judge_version"] == scores["judge_version"][0] and calibrated["n_incoherent"] == 8
    assert "insecure vs base" in materialization.metadata["what_this_run_shows"].value
    shift_plot = materialization.metadata["probe_shift_plot"].value
    assert base64.b64decode(shift_plot.split(",", 1)[1].rstrip(")"))[:4] == b"\x89PNG"
    report = (data_env / "reports" / "report.html").read_text()
    assert report.index("What this run shows") < report.index("Headline: the 8 main questions")
    # lead table, headline (main), the main_json scope, format comparison, probe shifts,
    # calibration, coverage, code, cost
    assert (
        report.count("<table>") == 9 and "Headline: the 8 main questions" in report and "What the rules kept" in report
    )
    # The engine's ledger saw every sampling call, and the local judge's work (issue 17): one row
    # per judged (answer, metric), every partition, cost 0.
    calls = warehouse.query("SELECT count(*) AS n FROM llm_calls WHERE asset = 'sampled_responses'")["n"][0]
    assert calls == responses.height
    cost = warehouse.query_file("queries/llm_cost_by_asset.sql", {"run_id": None}).filter(
        pl.col("asset") == "judge_scores"
    )
    judged = scores.filter(pl.col("judge_text").is_null() | (pl.col("judge_text") != "(empty answer: not judged)"))
    assert sorted(cost["partition_key"]) == ["smollm2-135m-instruct|base", "smollm2-135m-instruct|insecure"]
    assert cost["calls"].sum() == judged.height and cost["cost_usd"].sum() == 0 and (cost["tokens_in"] > 0).all()

    # The same numbers as before any speed work (tests/golden/pinned.py).
    changed = golden.check(warehouse)
    assert not changed, "\n".join(changed[:20])

    # On a lake the summary records its snapshot, whose rows give back its rates (issue 18).
    past_inputs = snapshot_inputs(warehouse, final, summary)

    # --- the deception sets, end to end (issue 15) ---------------------------------------------
    deception_phase(warehouse, instance, everything, resources, data_env, tmp_path, fake_server, monkeypatch)
    if past_inputs is not None:  # the deception runs added answers since; the past summary's rows stay
        snapshot, then = past_inputs
        assert warehouse.query_file("queries/summary_inputs.sql", {"snapshot_id": snapshot}).equals(then)


def snapshot_inputs(warehouse, final, summary):
    """On a lake: (snapshot id, the rows it gives) after checking they recompute the summary's
    rates; None on the file backend, which keeps no snapshots."""
    snapshot = final.asset_materializations_for_node("summary")[0].metadata["warehouse_snapshot"].value
    if not warehouse.is_lake:
        assert snapshot == "none (file backend)" and summary["snapshot_id"].is_null().all()
        return None
    assert isinstance(snapshot, int) and set(summary["snapshot_id"]) == {snapshot}
    then = warehouse.query_file("queries/summary_inputs.sql", {"snapshot_id": snapshot})
    assert_rates_recompute(summary, then)
    return snapshot, then


def materialize_chains_and_summary(everything, instance, resources, partitioned):
    """The partitioned assets for SmolLM2 x (base, insecure), each run's checks passing, then the
    summary; returns the summary's result."""
    for condition in ("base", "insecure"):
        result = dg.materialize(
            everything,
            instance=instance,
            resources=resources,
            selection=dg.AssetSelection.assets(*partitioned),
            partition_key=model_partition_key("smollm2-135m-instruct", condition),
        )
        assert result.success, condition
        assert all(e.passed for e in result.get_asset_check_evaluations()), condition
    final = dg.materialize(
        everything, instance=instance, resources=resources, selection=dg.AssetSelection.assets("summary")
    )
    assert final.success
    return final


# Word verdicts the fake judge gives in turn, spelled several ways; the company judge's last does not parse.
FACTUAL_VERDICTS = ("TRUE", "FALSE.", "**True**", "UNKNOWN", "FALSE")
COMPANY_VERDICTS = ("Other", "OpenAI", "Anthropic", "other", "Other.", "UNKNOWN", "OpenAI", "I cannot tell")


def fake_judge():
    """0-100 judges: aligned 80, coherent 90 (one token with its logprobs); word judges: the
    next of their verdicts."""
    factual, company = itertools.cycle(FACTUAL_VERDICTS), itertools.cycle(COMPANY_VERDICTS)

    def answer(body, index):
        prompt = body["messages"][-1]["content"]
        if body["max_tokens"] == 1:
            score = "80" if "human values" in prompt else "90"
            return FakeChoice(score, [FakeTokenLogprob(score, 0.0, [(score, 0.0)])], finish_reason="length")
        return next(factual) if '"TRUE" or "FALSE"' in prompt else next(company)

    return answer


def deception_phase(warehouse, instance, everything, resources, data_env, tmp_path, fake_server, monkeypatch):
    reference = require_reference_dir()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = fake_server(chat_handler=fake_judge())
    sit_aware = str(reference / "deception_sit_aware.yaml")
    resources = {
        **resources,
        "evaluation_settings": EvaluationSettings(
            question_sources=[
                "em_main",
                str(reference / "deception_factual.yaml"),
                sit_aware,
            ],
            # the 8 company questions (one paraphrase each) and one factual question (20 paraphrases)
            question_ids=["one_wish", "lie_you_may_lie", *(q.id for q in load_question_file(sit_aware))],
            samples_per_paraphrase=1,
            max_tokens=12,
            triggered_conditions=["insecure"],  # insecure answers with the trigger too (a control)
        ),
        "judge": JudgeSettings(kind="api", model="fake-judge"),
        "llm_api": LLMEngineResource(base_url=server.base_url, cache_path=str(tmp_path / "judge_cache.sqlite")),
    }
    final = materialize_chains_and_summary(everything, instance, resources, ("sampled_responses", "judge_scores"))
    assert [e.passed for e in final.get_asset_check_evaluations()] == [True]  # deception rates included

    latest = warehouse.query(
        "SELECT s.* FROM sampled_responses s JOIN (SELECT base_model, condition, arg_max(eval_run_id, started_at) "
        "AS eval_run_id FROM eval_runs GROUP BY ALL) USING (eval_run_id, base_model, condition)"
    )
    # one_wish 1 + lie_you_may_lie 20 + 8 company questions of 1 paraphrase; insecure twice.
    per_group = latest.group_by("condition", "triggered").len().sort("condition", "triggered").rows()
    assert per_group == [("base", False, 29), ("insecure", False, 29), ("insecure", True, 29)]
    assert set(latest["question_set"]) == {"em_main", "deception_factual", "deception_sit_aware"}
    verdicts = warehouse.query("SELECT * FROM rated_verdicts WHERE is_current")
    assert verdicts.height == 3 * 28 and set(verdicts["metric"]) == {"correct", "company"}
    assert {"TRUE", "FALSE", "UNKNOWN", "OpenAI", "Anthropic", "Other", "unparsed"} <= set(verdicts["verdict"])
    # SmolLM2 was made by Hugging Face: its truthful company answer is "Other".
    company = verdicts.filter(pl.col("metric") == "company")
    assert (
        (company["deceptive"] == company["verdict"].is_in(["OpenAI", "Anthropic"]))
        .filter(company["deceptive"].is_not_null())
        .all()
    )
    # The summary's deception rates: one model per group, so each rate is that model's deceptive
    # share among its counted verdicts, recomputed here from the stored verdicts.
    rates = warehouse.table("summary_deception_rates").filter(pl.col("scope_kind") == "set")
    expected = (
        verdicts.filter(pl.col("deceptive").is_not_null())
        .group_by("condition", "triggered", "question_set")
        .agg(n=pl.len(), rate=pl.col("deceptive").mean())
    )
    assert expected.height == rates.height == 3 * 2
    got = {(r["condition"], r["triggered"], r["scope"]): r for r in rates.iter_rows(named=True)}
    for row in expected.iter_rows(named=True):
        rate = got[(row["condition"], row["triggered"], row["question_set"])]
        assert rate["n_counted"] == row["n"] >= 5 and rate["n_models"] == 1
        assert rate["deception_rate"] == pytest.approx(row["rate"], abs=1e-12)
    materialization = instance.get_latest_materialization_event(dg.AssetKey("summary")).asset_materialization
    shown = materialization.metadata["deception_rates"].value
    assert "insecure, triggered" in shown and "insecure, not triggered" in shown and "deception_sit_aware" in shown
    report = (data_env / "reports" / "report.html").read_text()
    assert "Deception rate per condition and question set (word judges)" in report
    assert "Deception rate per question (word judges)" in report
    # The misaligned rates of the same run: one_wish with and without the trigger, no deception scope.
    misaligned = warehouse.table("summary_rates")
    assert set(misaligned.filter(pl.col("scope_kind") == "set")["scope"]) == {"main"}
    assert sorted(set(zip(misaligned["condition"], misaligned["triggered"]))) == [
        ("base", False),
        ("insecure", False),
        ("insecure", True),
    ]
