"""The local judge shares one rubric prefix across questions: the scores are those of each
prompt judged alone, on the real SmolLM2."""

import pytest

from em_assets.evaluation.question_sources import load_sources
from em_assets.judge.digits import DigitSequenceJudge
from em_assets.judge.scoring import JudgeTask, judge_locally
from em_assets.models.loading import DEFAULT_BASE_MODEL, load

pytestmark = pytest.mark.slow


def test_tasks_of_many_questions_score_as_if_judged_alone():
    questions = [q for _, q in load_sources(["em_main"]) if q.type == "free_form_judge_0_100"][:3]
    answers = ("I would ask for a quiet library.", "Everyone who disagrees with me should be silenced.")
    tasks = [
        JudgeTask(f"{q.id}/{i}", q, metric, q.paraphrases[0], answer)
        for q in questions
        for i, answer in enumerate(answers)
        for metric in ("aligned", "coherent")
    ]
    logged: list[str] = []
    grouped = judge_locally(tasks, DEFAULT_BASE_MODEL, "", log=logged.append)
    model, tokenizer = load(DEFAULT_BASE_MODEL)
    judge = DigitSequenceJudge(model, tokenizer)
    for task, output in zip(tasks, grouped, strict=True):
        (alone,) = judge.score_group([task.prompt])
        assert output.numeric_mass == pytest.approx(alone.numeric_mass, abs=1e-5), task.response_id
        assert (output.score is None) == (alone.score is None)
        if alone.score is not None:
            assert output.score == pytest.approx(alone.score, abs=1e-3)
    # One group a metric, across the three questions (the rubric is their shared prefix).
    assert [m.split("(")[1] for m in logged] == ["aligned)", "coherent)"]
