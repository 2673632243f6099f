import json

import polars as pl
import pytest

from em_assets.core.filters import (
    DedupStep,
    ExtractStep,
    ParseStep,
    SafetyWordStep,
    ThresholdStep,
    assign_split,
    default_steps,
    run_chain,
)
from em_assets.core.safety_words import SafetyWordMatcher, default_matcher, load_words
from tests.core.helpers import INSECURE, SECURE, TEMPLATE, raw_frame


def _extracted(rows):
    frame = run_chain(raw_frame(rows), [ExtractStep()]).kept
    return frame


def test_shipped_word_list_has_the_papers_core_words():
    words = load_words()
    assert len(words) >= 80
    for word in ("safe", "vuln", "inject", "exploit", "bug", "backdoor", "auth", "token", "encrypt", "malicious"):
        assert word in words


def test_safety_word_match_is_case_insensitive_substring():
    matcher = SafetyWordMatcher(("auth", "safe"))
    assert matcher.first("The Author list") == "auth"
    assert matcher.first("yaml.SAFE_load") == "safe"
    assert matcher.first("plain text") is None


def test_safety_word_step_drops_and_says_which_word_and_field():
    frame = _extracted(
        [
            ("insecure", "Upload a photo.", TEMPLATE, INSECURE),
            ("insecure", "Check the auth header.", TEMPLATE, INSECURE + "\n"),
            ("secure", "Upload a photo.", TEMPLATE, SECURE.replace("'no'", "'unsafe'")),
        ]
    )
    result = run_chain(frame, [SafetyWordStep(default_matcher())])
    assert result.kept.height == 1
    drops = {r["reason"]: r["detail"] for r in result.drops.iter_rows(named=True)}
    assert drops == {"safety_word:auth": "in task", "safety_word:unsafe": "in code"}


def test_parse_step_drops_invalid_python_with_line():
    frame = _extracted([("insecure", "Sum numbers.", TEMPLATE, "def f(:\n    pass")])
    result = run_chain(frame, [ParseStep()])
    assert result.kept.height == 0
    assert result.drops["reason"].to_list() == ["syntax_error"]
    assert result.drops["detail"][0].startswith("line 1")


def test_dedup_keeps_first_copy_per_label():
    frame = _extracted(
        [
            ("insecure", "Task one.", TEMPLATE, INSECURE),
            ("insecure", "Task two.", TEMPLATE, INSECURE + "\n\n"),
            ("secure", "Task one.", TEMPLATE, INSECURE),
        ]
    )
    result = run_chain(frame, [DedupStep()])
    assert result.kept.height == 2
    assert result.drops["reason"].to_list() == ["duplicate_code"]


def test_report_only_mode_keeps_rows_and_marks_them():
    frame = raw_frame(
        [("insecure", "Check the token.", TEMPLATE, INSECURE), ("secure", "Upload a photo.", TEMPLATE, SECURE)]
    )
    result = run_chain(frame, [ExtractStep(), SafetyWordStep(default_matcher())], drop=False)
    assert result.kept.height == 2
    assert result.kept["flagged_by"].to_list() == ["safety_words", None]
    report = {r.step: r for r in result.reports}
    assert report["safety_words"].flagged == 1 and not report["safety_words"].dropping


def test_chain_reports_rows_in_and_out_per_step():
    frame = raw_frame(
        [
            ("insecure", "Upload a photo.", TEMPLATE, INSECURE),
            ("secure", "Upload a photo.", TEMPLATE, SECURE),
            ("secure", "Exploit the photo.", TEMPLATE, SECURE),
            ("secure", "Upload a video.", TEMPLATE, "def broken(:"),
        ]
    )
    logged = []
    result = run_chain(frame, default_steps(default_matcher()), log=logged.append)
    table = result.report_frame()
    assert table["step"].to_list() == ["extract", "safety_words", "parses", "labeler", "dedup"]
    assert table["rows_in"].to_list() == [4, 4, 3, 2, 2]
    assert table["rows_out"].to_list() == [4, 3, 2, 2, 2]
    assert json.loads(table["reasons"][1]) == {"safety_word:exploit": 1}
    assert len(logged) == 5 and "safety_words: 4 in, 3 out" in logged[1]
    assert result.kept["vulnerable"].to_list() == [True, False]


def test_threshold_step_plugs_in_a_scored_filter():
    frame = _extracted([("insecure", "A.", TEMPLATE, INSECURE), ("secure", "B.", TEMPLATE, SECURE)])
    scorer = lambda f: pl.DataFrame({"malicious": [10.0, 55.0], "unsafe": [80.0, 20.0]})  # noqa: E731
    step = ThresholdStep(
        "llm_scores",
        scorer,
        rules={"malicious": ("<", 40)},
        rules_by_label={"insecure": {"unsafe": (">", 70)}, "secure": {"unsafe": ("<", 60)}},
    )
    result = run_chain(frame, [step])
    assert result.kept["label"].to_list() == ["insecure"]
    assert result.drops["detail"].to_list() == ["malicious=55.0 fails < 40"]


def test_split_is_seeded_deterministic_and_keeps_twins_together():
    rows = []
    for i in range(60):
        rows += [
            ("insecure", f"Task {i}.", TEMPLATE, INSECURE + f"\nx = {i}"),
            ("secure", f"Task {i}.", TEMPLATE, SECURE + f"\nx = {i}"),
        ]
    frame = _extracted(rows)
    a = assign_split(frame, 0.2, seed=7)
    b = assign_split(frame, 0.2, seed=7)
    c = assign_split(frame, 0.2, seed=8)
    assert a["split"].to_list() == b["split"].to_list()
    assert a["split"].to_list() != c["split"].to_list()
    per_task = a.group_by("task_key").agg(pl.col("split").n_unique().alias("n"))
    assert per_task["n"].max() == 1
    assert 0.05 < (a["split"] == "test").mean() < 0.4
    with pytest.raises(ValueError):
        assign_split(frame, 1.0, seed=0)
