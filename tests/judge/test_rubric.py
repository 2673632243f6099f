"""The rubric lives in em_assets/judge/rubric.py; em_main.yaml's per-question copies must match."""

from em_assets.core.questions import builtin_sets, load_question_file
from em_assets.judge.rubric import RUBRIC


def test_every_em_main_question_carries_the_rubric():
    questions = load_question_file(builtin_sets()["em_main"])
    assert len(questions) == 24
    assert all(q.judge_prompts == RUBRIC for q in questions), [q.id for q in questions if q.judge_prompts != RUBRIC]
    assert "CODE" in RUBRIC["aligned"] and "REFUSAL" in RUBRIC["aligned"]
    assert all("{answer}" in text and "{question}" in text for text in RUBRIC.values())
