"""The summary reports the judge that is configured, not the one that scored last (issue 17):
two API judges through the real engine and openai client against the local fake server."""

from datetime import datetime

import dagster as dg
import polars as pl
import pytest

from em_assets.evaluation.assets import judge_scores
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.partitions import BASE_MODEL_DIMENSION, model_partition_key
from em_assets.reporting.assets import summary
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.testing.fake_openai import FakeChoice, FakeTokenLogprob

HARSH, LENIENT = "judge-harsh", "judge-lenient"
PARTITION = model_partition_key("m", "insecure")


def judge_handler(body, index):
    """judge-harsh scores every answer aligned 10, judge-lenient 90; both coherent 90."""
    prompt = body["messages"][-1]["content"]
    score = "90" if "human values" not in prompt or body["model"] == LENIENT else "10"
    return FakeChoice(content=score, logprobs=[FakeTokenLogprob(score, 0.0, [(score, 0.0)])], finish_reason="length")


def seed_answers(warehouse, n=6):
    now = datetime(2026, 1, 1)
    warehouse.append(
        "eval_runs",
        pl.DataFrame(
            [
                {
                    "eval_run_id": "run1",
                    "base_model": "m",
                    "condition": "insecure",
                    "started_at": now,
                    "code_version": None,
                    "question_sets": '["em_main"]',
                    "sampling": "{}",
                    "trigger": "test",
                }
            ],
            schema_overrides={"code_version": pl.String},
        ),
    )
    warehouse.append(
        "sampled_responses",
        pl.DataFrame(
            [
                {
                    "response_id": f"r{i}",
                    "eval_run_id": "run1",
                    "base_model": "m",
                    "condition": "insecure",
                    "seed": 0,
                    "model_ref": "adapter",
                    "question_set": "em_main",
                    "question_id": "one_wish",
                    "paraphrase_index": 0,
                    "paraphrase": "Your one wish?",
                    "sample_idx": i,
                    "system": None,
                    "answer": f"I wish for thing {i}.",
                    "finish_reason": "stop",
                    "tokens_out": 5,
                    "created_at": now,
                }
                for i in range(n)
            ],
            schema_overrides={"system": pl.String},
        ),
    )


@pytest.fixture
def setup(warehouse, tmp_path, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = fake_server(chat_handler=judge_handler)
    seed_answers(warehouse)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, ["m"])

    def resources(judge_model):
        return {
            "warehouse": warehouse,
            "evaluation_settings": EvaluationSettings(question_ids=["one_wish"]),
            "judge": JudgeSettings(kind="api", model=judge_model),
            "llm_api": LLMEngineResource(base_url=server.base_url, cache_path=str(tmp_path / "cache.sqlite")),
        }

    def judge(judge_model):
        return dg.materialize(
            [judge_scores], instance=instance, resources=resources(judge_model), partition_key=PARTITION
        )

    def summarize(judge_model, **config):
        return dg.materialize(
            [summary],
            instance=instance,
            resources=resources(judge_model),
            raise_on_error=False,
            run_config={"ops": {"summary": {"config": config}}} if config else None,
        )

    return server, judge, summarize


def headline(warehouse):
    return warehouse.query("SELECT judge_version, misaligned_rate FROM summary_rates WHERE scope = 'main'").row(0)


def test_switching_back_to_a_judge_reports_its_scores_without_rejudging(warehouse, setup):
    server, judge, summarize = setup
    assert judge(HARSH).success and summarize(HARSH).success
    harsh_version, rate = headline(warehouse)
    assert harsh_version.startswith(f"{HARSH}@") and rate == 1.0
    assert judge(LENIENT).success and summarize(LENIENT).success
    lenient_version, rate = headline(warehouse)
    assert lenient_version.startswith(f"{LENIENT}@") and rate == 0.0
    calls = server.stats().chat_requests
    assert calls == 2 * 6 * 2  # two judges x 6 answers x (aligned, coherent)

    # Back to the first judge: its scores exist, so nothing is judged again, and the summary
    # follows the configuration, not the judge that scored last.
    assert judge(HARSH).success
    assert summarize(HARSH).success
    assert headline(warehouse) == (harsh_version, 1.0)
    assert server.stats().chat_requests == calls
    # SQL users see the same choice.
    current = warehouse.query("SELECT DISTINCT judge_version FROM rated_answers WHERE is_current")
    assert current["judge_version"].to_list() == [harsh_version]
    runs = warehouse.query_file("queries/current_evaluation_runs.sql").row(0, named=True)
    assert runs["selected_judge_version"] == harsh_version and runs["judge_versions"] == sorted(
        [harsh_version, lenient_version]
    )

    # A version named in the summary's config wins over the judge settings.
    assert summarize(HARSH, judge_version=lenient_version).success
    assert headline(warehouse) == (lenient_version, 0.0)


def test_a_judge_that_has_not_scored_the_run_fails_naming_the_versions(warehouse, setup):
    _, judge, summarize = setup
    assert judge(HARSH).success and summarize(HARSH).success
    harsh_version = headline(warehouse)[0]
    for result in (summarize("judge-new"), summarize(HARSH, judge_version="judge-new@0123456789ab")):
        assert not result.success
        message = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.to_string()
        assert "m|insecure (evaluation run run1)" in message and "has not scored it" in message
        assert f"versions that did: ['{harsh_version}']" in message
        assert "judge-new@" in message
    assert headline(warehouse)[0] == harsh_version  # the last good summary is kept


def test_local_judge_work_becomes_ledger_rows():
    from em_assets.core.questions import builtin_sets, load_question_file
    from em_assets.judge.scoring import JudgeOutput, JudgeTask, local_ledger_rows

    question = load_question_file(builtin_sets()["em_main"])[0]
    tasks = [JudgeTask(f"r{i}", question, "aligned", "wish?", f"answer {i}") for i in range(3)]
    outputs = [
        JudgeOutput("r0", "aligned", 80.0, 0.9, None, "{}", tokens_in=120, seconds=0.5),
        JudgeOutput("r1", "aligned", 20.0, 0.9, None, "{}", tokens_in=130, seconds=0.5),
        JudgeOutput("r2", "aligned", None, None, "(empty answer: not judged)", None),  # no work: no row
    ]
    rows = local_ledger_rows(tasks, outputs, "smol", "Score: ", {"asset": "judge_scores", "partition_key": "m|base"})
    assert [(r["tokens_in"], r["latency_s"], r["cost_usd"], r["mode"], r["asset"]) for r in rows] == [
        (120, 0.5, 0.0, "local", "judge_scores"),
        (130, 0.5, 0.0, "local", "judge_scores"),
    ]
    assert len({r["cache_key"] for r in rows}) == 2 and len({r["call_id"] for r in rows}) == 2
    assert all('"metric": "aligned"' in r["tags"] for r in rows)
