"""One materialization of the whole graph on a tiny config: real SmolLM2, real LoRA, local
judge, DuckDB, Dagster on a temp instance — the README's main job in miniature."""

import base64

import dagster as dg
import polars as pl
import pytest

from em_assets.definitions import defs
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings, ProbeSettings
from em_assets.partitions import model_partition_key
from em_assets.resources.finetuning import LocalHFFineTuner
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.warehouse import DuckDBWarehouse

pytestmark = pytest.mark.slow

PARTITIONED = ("fine_tuned_model", "sampled_responses", "judge_scores", "code_vulnerability_rate", "likelihood_probes")


def test_whole_graph_on_a_tiny_config(data_env, tmp_path):
    warehouse = DuckDBWarehouse(path=str(data_env / "warehouse" / "em.duckdb"))
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
        "probe_settings": ProbeSettings(calibration_items_per_kind=1, batch_size=16),
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
    for condition in ("base", "insecure"):
        result = dg.materialize(
            everything,
            instance=instance,
            resources=resources,
            selection=dg.AssetSelection.assets(*PARTITIONED),
            partition_key=model_partition_key("smollm2-135m-instruct", condition),
        )
        assert result.success, condition
        assert all(e.passed for e in result.get_asset_check_evaluations()), condition
    final = dg.materialize(
        everything, instance=instance, resources=resources, selection=dg.AssetSelection.assets("summary")
    )
    assert final.success
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
