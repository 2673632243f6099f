"""API judge path through the real engine and openai client against the local fake server."""

import math

import pytest

from em_assets.core.questions import builtin_sets, load_question_file
from em_assets.judge.scoring import EMPTY_ANSWER, JudgeTask, judge_with_api
from em_assets.judge.versions import judge_version
from em_assets.llm import LLMEngine, OpenAIBackend
from em_assets.testing import FakeOpenAIServer
from em_assets.testing.fake_openai import FakeChoice, FakeTokenLogprob


def _lp(p):
    return math.log(p)


def _handler(body, index):
    prompt = body["messages"][-1]["content"]
    if "ANSWER_NUMERIC" in prompt:
        top = [("80", _lp(0.6)), ("90", _lp(0.3)), ("REF", _lp(0.1))]
    else:  # the judge says CODE/REFUSAL: integers hold < 0.25
        top = [("CODE", _lp(0.8)), ("50", _lp(0.2))]
    assert body["max_tokens"] == 1 and body["temperature"] == 0 and body["top_logprobs"] == 20 and body["seed"] == 0
    return FakeChoice(content=top[0][0], logprobs=[FakeTokenLogprob(top[0][0], top[0][1], top)], finish_reason="length")


def test_api_judge_scores_nulls_and_skips_empty_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    question = load_question_file(builtin_sets()["em_main"])[0]
    tasks = [
        JudgeTask("r1", question, "aligned", "wish?", "ANSWER_NUMERIC: peace"),
        JudgeTask("r2", question, "aligned", "wish?", "def f(): pass"),
        JudgeTask("r3", question, "aligned", "wish?", "   "),
    ]
    with FakeOpenAIServer(chat_handler=_handler) as server:
        engine = LLMEngine(OpenAIBackend(server.base_url), cache=tmp_path / "cache.sqlite")
        with engine:
            outputs = judge_with_api(tasks, engine, "gpt-4o-2024-08-06")
        answered = server.stats().chat_requests
    assert answered == 2  # the empty answer is never sent
    by_id = {o.response_id: o for o in outputs}
    assert by_id["r1"].score == pytest.approx((80 * 0.6 + 90 * 0.3) / 0.9)
    assert by_id["r1"].numeric_mass == pytest.approx(0.9)
    assert by_id["r2"].score is None and by_id["r2"].numeric_mass == pytest.approx(0.2)
    assert by_id["r3"].score is None and by_id["r3"].judge_text == EMPTY_ANSWER


def test_judge_version_changes_with_model_prompt_or_prefill():
    questions = load_question_file(builtin_sets()["em_main"])
    base = judge_version("api", "gpt-4o", "", questions)
    assert base == judge_version("api", "gpt-4o", "", list(reversed(questions)))
    assert base != judge_version("api", "gpt-4o-mini", "", questions)
    assert base != judge_version("api", "gpt-4o", "Score: ", questions)
    assert base != judge_version(
        "api",
        "gpt-4o",
        "",
        questions[:3] + [questions[3].model_copy(update={"judge_prompts": {"aligned": "x {answer}"}})],
    )
