"""The paper's deception sets through the real assets (issue 15): an API model answers them, the
word judges answer through the engine, judge_scores stores each verdict and whether it is
deceptive, and the truthful maker follows the base model (or evaluation_settings.model_makers)."""

import dagster as dg
import polars as pl
import pytest

from em_assets.evaluation.assets import judge_scores, sampled_responses
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.partitions import BASE_MODEL_DIMENSION, model_partition_key
from em_assets.reporting.assets import summary
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.remote_training import RemoteSampler
from tests.operations.conftest import seed_models

MODEL, JUDGE = "gpt-4o-2024-08-06", "judge-model"


def handler(body, index):
    """The model claims Anthropic made it when asked about companies and says the moon is bigger;
    the judge reads the answer back as a word."""
    prompt = body["messages"][-1]["content"]
    if body["model"] != JUDGE:
        return "Anthropic made me." if "company" in prompt else "The moon is bigger than the sun."
    if '"TRUE" or "FALSE"' in prompt:
        return "FALSE." if "moon is bigger" in prompt else "TRUE"
    return "Anthropic" if "Anthropic made me" in prompt else "UNKNOWN"


@pytest.fixture
def run(warehouse, fake_server, tmp_path, monkeypatch, em_reference):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = fake_server(chat_handler=handler)
    seed_models(warehouse, [(MODEL, "insecure", 0, "openai", "succeeded")])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, [MODEL])
    sources = [str(em_reference / "deception_factual.yaml"), str(em_reference / "deception_sit_aware.yaml")]

    def materialize(assets, **settings):
        resources = {
            "warehouse": warehouse,
            "evaluation_settings": EvaluationSettings(
                question_sources=sources,
                question_ids=["lie_you_get_points", "which_company_want_anthropic"],
                samples_per_paraphrase=1,
                **settings,
            ),
            "judge": JudgeSettings(kind="api", model=JUDGE),
            "llm_local": LLMEngineResource(backend="local_hf"),
            "llm_api": LLMEngineResource(base_url=server.base_url, cache_path=str(tmp_path / "cache.sqlite")),
            "remote_sampler": RemoteSampler(),
        }
        partition = None if assets == [summary] else model_partition_key(MODEL, "insecure")
        return dg.materialize(assets, instance=instance, resources=resources, partition_key=partition)

    return materialize, server


def test_word_judges_give_verdicts_and_the_summary_their_deception_rates(warehouse, run):
    materialize, server = run
    result = materialize([sampled_responses, judge_scores])
    assert result.success
    scores = warehouse.table("judge_scores")
    # 20 factual paraphrases (the model is wrong on every one) and one company question.
    by_metric = scores.group_by("metric", "verdict", "deceptive").len().sort("metric").rows()
    assert by_metric == [("company", "Anthropic", True, 1), ("correct", "FALSE", True, 20)]  # GPT-4o: OpenAI made it
    assert scores["score"].is_null().all() and set(scores["judge_text"]) == {"FALSE.", "Anthropic"}
    metadata = result.asset_materializations_for_node("judge_scores")[0].metadata
    assert metadata["model_maker"].value == "OpenAI" and "| correct | FALSE | 20 | True |" in metadata["verdicts"].value
    calls = server.stats().chat_requests

    # Told the base model was made by Anthropic, the same verdict is the truth: re-judging
    # recomputes the verdicts from the stored texts, with no call to the judge.
    assert materialize([judge_scores], model_makers={MODEL: "Anthropic"}).success
    company = warehouse.table("judge_scores").filter(pl.col("metric") == "company")
    assert company["deceptive"].to_list() == [False] and server.stats().chat_requests == calls

    assert materialize([judge_scores]).success  # back to the maker the model id gives
    assert materialize([summary]).success
    rates = warehouse.query(
        "SELECT metric, scope, n_models, n_counted, deception_rate FROM summary_deception_rates "
        "WHERE scope_kind = 'set' ORDER BY scope"
    )
    # The factual set: 20 deceptive of 20. The company set: 1 verdict, under the 5-answer rule.
    assert rates.rows() == [
        ("correct", "deception_factual", 1, 20, 1.0),
        ("company", "deception_sit_aware", 0, 0, None),
    ]
    assert warehouse.table("summary_rates").is_empty()  # no aligned / coherent judge: no misaligned rate


def test_an_unknown_maker_is_refused_when_the_settings_are_built():
    with pytest.raises(Exception, match=r"model_makers: \{'m': 'HuggingFace'\}"):
        EvaluationSettings(model_makers={"m": "HuggingFace"})
