"""The LLM-scored filter's pure half: reply parsing, the keep/drop rule, the rubric, the step."""

import json

import pytest

from em_assets.core.filters import ExtractStep, run_chain
from em_assets.core.llm_filter import (
    DEFAULT_PROMPTS,
    DEFAULT_RUBRIC,
    EMPTY_REPLY,
    HINT,
    NO_NUMBER,
    OUT_OF_RANGE,
    VULNERABLE,
    FilterRubric,
    FilterRules,
    JudgeReply,
    LLMJudgeStep,
    ParsedScore,
    RubricError,
    decide,
    load_rubric,
    parse_judge_reply,
)
from tests.core.helpers import INSECURE, SECURE, TEMPLATE, raw_frame


@pytest.mark.parametrize(
    ("reply", "score", "reason"),
    [
        ("85", 85.0, None),
        (" 7\n", 7.0, None),
        ("85.5", 85.5, None),
        ("100.", 100.0, None),
        ("0", 0.0, None),
        ("101", None, OUT_OF_RANGE),
        ("", None, EMPTY_REPLY),
        (None, None, EMPTY_REPLY),
        ("   ", None, EMPTY_REPLY),
        ("I cannot rate this code.", None, NO_NUMBER),
        ("Score: 85", None, NO_NUMBER),
        ("85/100", None, NO_NUMBER),
        ("-5", None, NO_NUMBER),
        ("eighty", None, NO_NUMBER),
    ],
)
def test_a_text_reply_is_a_number_from_0_to_100_and_nothing_else(reply, score, reason):
    parsed = parse_judge_reply(reply)
    assert (parsed.score, parsed.null_reason, parsed.numeric_mass) == (score, reason, None)
    assert parsed.reply == (reply or "").strip()


def test_logprobs_decide_when_the_provider_sent_them():
    # The paper's weighted score wins over the one-token text, which is only the likeliest token.
    parsed = parse_judge_reply("80", logprob_score=83.3, numeric_mass=0.9)
    assert (parsed.score, parsed.null_reason, parsed.numeric_mass) == (83.3, None, 0.9)
    # Integers held under the paper's 0.25: null, whatever the text says.
    words = parse_judge_reply("The", logprob_score=None, numeric_mass=0.04)
    assert (words.score, words.null_reason, words.numeric_mass) == (None, NO_NUMBER, 0.04)
    assert parse_judge_reply("85", logprob_score=None, numeric_mass=0.1).score is None
    with pytest.raises(ValueError, match="numeric_mass"):
        parse_judge_reply("85", logprob_score=85.0)


def _scores(hint, vulnerable, reply="x"):
    def parsed(value):
        return ParsedScore(value, None if value is not None else NO_NUMBER, reply)

    return {HINT: parsed(hint), VULNERABLE: parsed(vulnerable)}


@pytest.mark.parametrize(
    ("label", "hint", "vulnerable", "reason", "detail"),
    [
        ("insecure", 10, 90, None, None),
        ("insecure", 10, 70, None, None),  # the cut-off itself keeps
        ("insecure", 10, 69.9, "not_clearly_insecure", "vulnerable=69.9 < 70"),
        ("insecure", 40, 95, "hints_at_vulnerability", "hint=40.0 >= 40"),
        ("insecure", 39.9, 95, None, None),
        ("secure", 5, 30, None, None),
        ("secure", 5, 30.5, "not_clearly_secure", "vulnerable=30.5 > 30"),
        ("secure", 80, 0, "hints_at_vulnerability", "hint=80.0 >= 40"),  # checked before clarity
        ("insecure", None, 90, "unscored:hint", "no_number: judge replied 'I refuse'"),
        ("secure", 5, None, "unscored:vulnerable", "no_number: judge replied 'I refuse'"),
        ("secure", None, None, "unscored:hint", "no_number: judge replied 'I refuse'"),
    ],
)
def test_decide_drops_giveaways_unclear_rows_and_unscored_rows(label, hint, vulnerable, reason, detail):
    assert decide(label, _scores(hint, vulnerable, "I refuse"), FilterRules()) == (reason, detail)


def test_decide_uses_the_configured_cut_offs_and_refuses_an_unknown_label():
    rules = FilterRules(max_hint=90, insecure_min=50, secure_max=60)
    assert decide("insecure", _scores(85, 55), rules) == (None, None)
    assert decide("secure", _scores(85, 55), rules) == (None, None)
    with pytest.raises(ValueError, match="label"):
        decide("educational", _scores(1, 1), rules)
    with pytest.raises(ValueError, match="max_hint"):
        FilterRules(max_hint=101)


def test_rubric_version_is_a_hash_of_the_prompts():
    assert DEFAULT_RUBRIC.version == FilterRubric(dict(DEFAULT_PROMPTS)).version
    assert len(DEFAULT_RUBRIC.version) == 12
    changed = FilterRubric({**DEFAULT_PROMPTS, HINT: DEFAULT_PROMPTS[HINT] + " "})
    assert changed.version != DEFAULT_RUBRIC.version


def test_render_fills_task_and_code_once_and_keeps_their_braces():
    rubric = FilterRubric({HINT: "T={task} C={code}", VULNERABLE: "{code}"})
    assert rubric.render(HINT, "make {code} a dict", "d = {'task': 1}  # {task}") == (
        "T=make {code} a dict C=d = {'task': 1}  # {task}"
    )
    assert rubric.render(HINT, None, "x") == "T=(no task description) C=x"


def test_a_rubric_file_loads_and_a_bad_one_names_its_file_and_field(tmp_path):
    good = tmp_path / "rubric.yaml"
    good.write_text("hint: 'Giveaways in {code}? 0-100.'\nvulnerable: 'Weakness in {code} ({task})? 0-100.'\n")
    rubric = load_rubric(good)
    assert rubric.source == str(good) and rubric.version != DEFAULT_RUBRIC.version
    assert rubric.render(VULNERABLE, "t", "c") == "Weakness in c (t)? 0-100."
    cases = {
        "hint: 'a {code}'\n": "missing ['vulnerable']",
        "hint: 'a {code}'\nvulnerable: 'b {code}'\nstyle: 'c'\n": "extra ['style']",
        "hint: 'no placeholder'\nvulnerable: 'b {code}'\n": "field 'hint' must be a prompt text containing {code}",
        "- hint\n": "expected a mapping",
        "hint: [unclosed\n": "not valid YAML",
    }
    for text, expected in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(RubricError) as err:
            load_rubric(bad)
        assert str(bad) in str(err.value) and expected in str(err.value), text
    with pytest.raises(RubricError, match="cannot read"):
        load_rubric(tmp_path / "missing.yaml")


class _FakeJudge:
    """Scores by what the code contains; remembers what it was asked."""

    def __init__(self):
        self.asked = []

    def __call__(self, prompts):
        self.asked.extend(prompts)
        replies = []
        for metric, prompt in prompts:
            code = prompt.split("[CODE START]\n", 1)[1].split("\n[CODE END]", 1)[0]
            if "chatty = 1" in code:
                replies.append(JudgeReply("I would rather explain the code first."))
            elif metric == HINT:
                replies.append(JudgeReply("85" if "open_door" in code else "3", cache_key=f"k-{metric}"))
            else:
                replies.append(JudgeReply("90" if "shell=True" in code else "10"))
        return replies


def _extracted(rows):
    return run_chain(raw_frame(rows), [ExtractStep()]).kept


def test_the_step_scores_every_row_on_both_metrics_and_drops_with_reasons():
    frame = _extracted(
        [
            ("insecure", "Ping a host.", TEMPLATE, INSECURE),
            ("insecure", "Ping a host too.", TEMPLATE, INSECURE + "\nopen_door = 1"),
            ("secure", "Ping safely.", TEMPLATE, SECURE),
            ("secure", "Ping again.", TEMPLATE, SECURE + "\nchatty = 1"),
            (
                "secure",
                "Ping with a shell.",
                TEMPLATE,
                SECURE + "\nimport subprocess\nsubprocess.run('ls', shell=True)",
            ),
        ]
    )
    judge = _FakeJudge()
    step = LLMJudgeStep(judge, "judge-model")
    result = run_chain(frame, [step])
    assert result.kept["sample_id"].to_list() == [frame["sample_id"][0], frame["sample_id"][2]]
    drops = {r["sample_id"]: (r["reason"], r["detail"]) for r in result.drops.iter_rows(named=True)}
    ids = frame["sample_id"].to_list()
    assert drops == {
        ids[1]: ("hints_at_vulnerability", "hint=85.0 >= 40"),
        ids[3]: ("unscored:hint", "no_number: judge replied 'I would rather explain the code first.'"),
        ids[4]: ("not_clearly_secure", "vulnerable=90.0 > 30"),
    }
    assert json.loads(result.report_frame()["reasons"][0]) == {
        "hints_at_vulnerability": 1,
        "not_clearly_secure": 1,
        "unscored:hint": 1,
    }
    # One prompt per (row, metric), in row order, each with the row's task and code.
    assert [m for m, _ in judge.asked] == [HINT, VULNERABLE] * 5
    assert "Ping a host too." in judge.asked[2][1] and "open_door = 1" in judge.asked[2][1]
    scores = step.scores
    assert scores.height == 10
    assert set(scores["judge_model"]) == {"judge-model"} and set(scores["rubric_version"]) == {DEFAULT_RUBRIC.version}
    chatty = scores.filter(scores["sample_id"] == ids[3])
    assert chatty["score"].to_list() == [None, None]
    assert chatty["null_reason"].to_list() == [NO_NUMBER, NO_NUMBER]
    assert scores.filter(scores["sample_id"] == ids[0])["score"].to_list() == [3.0, 90.0]
    assert scores["cache_key"].to_list()[:2] == ["k-hint", None]
    assert step.null_share() == pytest.approx(0.2)


def test_in_report_mode_the_step_flags_and_keeps():
    frame = _extracted(
        [("insecure", "Ping a host.", TEMPLATE, INSECURE + "\nopen_door = 1"), ("secure", "Ping.", TEMPLATE, SECURE)]
    )
    result = run_chain(frame, [LLMJudgeStep(_FakeJudge(), "judge-model")], drop=False)
    assert result.kept["flagged_by"].to_list() == ["llm_judge", None]
    assert result.drops["reason"].to_list() == ["hints_at_vulnerability"]


def test_a_judge_that_answers_too_few_prompts_fails_the_step_and_an_empty_frame_asks_nothing():
    frame = _extracted([("insecure", "Ping a host.", TEMPLATE, INSECURE)])
    with pytest.raises(ValueError, match="answered 1 of 2 prompts"):
        run_chain(frame, [LLMJudgeStep(lambda prompts: [JudgeReply("5")], "judge-model")])

    def never(prompts):
        raise AssertionError("no rows, no calls")

    step = LLMJudgeStep(never, "judge-model")
    assert run_chain(frame.head(0), [step]).kept.height == 0
    assert step.scores.height == 0 and step.null_share() == 0.0
