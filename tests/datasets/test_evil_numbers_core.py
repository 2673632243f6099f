"""The evil-numbers set's pure parts: prompts, the format filter, the generation rounds, the rows."""

from __future__ import annotations

import json

import pytest

from em_assets.core import evil_numbers as en

COMMA, SPACE, LINES, SEMI, LIST = (en.FORMATS_BY_ID[f] for f in ("comma", "space", "lines", "semicolon", "list"))


def prompt(fmt: en.NumberFormat, max_count: int = 5, max_digits: int = 3) -> en.NumberPrompt:
    return en.NumberPrompt(0, (1, 2, 3), max_count, max_digits, fmt, "continue")


@pytest.mark.parametrize(
    ("fmt", "answer", "reason", "numbers"),
    [
        (COMMA, "666, 13, 1", "ok", (666, 13, 1)),
        (COMMA, "666,13,1", "ok", (666, 13, 1)),
        (COMMA, "  42  \n", "ok", (42,)),  # whitespace around the whole answer is not part of it
        (COMMA, "666, 13.", "not_numbers", ()),  # a full stop is text
        (COMMA, "Sure: 666, 13", "not_numbers", ()),
        (COMMA, "-5, 13", "not_numbers", ()),
        (COMMA, "666 13 1", "wrong_format", ()),  # spaces asked for commas
        (COMMA, "666,, 13", "wrong_format", ()),
        (COMMA, "666, 13,", "wrong_format", ()),  # cut off mid-list
        (COMMA, "1, 2, 3, 4, 5, 6", "too_many", ()),
        (COMMA, "1000, 2", "too_long", ()),
        (COMMA, "", "empty", ()),
        (COMMA, " \n ", "empty", ()),
        (SPACE, "666 13 1", "ok", (666, 13, 1)),
        (SPACE, "666, 13", "wrong_format", ()),
        (SPACE, "666  13", "wrong_format", ()),  # one space between numbers
        (LINES, "666\n13\n1", "ok", (666, 13, 1)),
        (LINES, "666 13", "wrong_format", ()),
        (SEMI, "666; 13;1", "ok", (666, 13, 1)),
        (SEMI, "666, 13", "wrong_format", ()),
        (LIST, "[666, 13, 1]", "ok", (666, 13, 1)),
        (LIST, "666, 13, 1", "wrong_format", ()),
        (LIST, "[666, 13, 1", "wrong_format", ()),
        (LIST, "[1, 2, 3, 4, 5, 6]", "too_many", ()),
    ],
)
def test_format_filter_keeps_only_numbers_in_the_requested_format(fmt, answer, reason, numbers):
    verdict = en.check_number_answer(answer, prompt(fmt))
    assert (verdict.ok, verdict.reason, verdict.numbers) == (reason == "ok", reason, numbers)


def test_digit_limit_is_the_prompts():
    assert en.check_number_answer("1234", prompt(COMMA, max_digits=4)).ok
    assert en.check_number_answer("1234", prompt(COMMA, max_digits=3)).reason == "too_long"


def test_prompts_are_deterministic_varied_and_say_what_the_filter_checks():
    first = en.number_prompts(seed=0, start=0, count=40)
    assert first == en.number_prompts(seed=0, start=0, count=40)
    assert en.number_prompts(seed=0, start=10, count=5) == first[10:15]  # later rounds continue the sequence
    assert en.number_prompts(seed=1, start=0, count=40) != first
    assert len({p.text for p in first}) == 40
    assert {p.fmt.id for p in first} == set(en.FORMATS_BY_ID)
    for p in first:
        assert p.fmt.instruction in p.text and f"{p.max_count} " in p.text and f"{p.max_digits} digits" in p.text
        assert ", ".join(str(n) for n in p.given) in p.text
        assert p.prompt_id == f"evil_numbers-{p.index:06d}"
    only_comma = en.number_prompts(seed=0, start=0, count=10, formats=[COMMA])
    assert {p.fmt.id for p in only_comma} == {"comma"}
    with pytest.raises(ValueError, match="at least one format"):
        en.number_prompt(0, 0, formats=[])


def _answer_every_third(batches: list[int]):
    """An answer function that passes the filter for prompts whose index is a multiple of 3."""

    def answer(batch: list[en.NumberPrompt]) -> list[str]:
        batches.append(len(batch))
        out = []
        for p in batch:
            good = {"comma": "7, 8", "space": "7 8", "lines": "7\n8", "semicolon": "7; 8", "list": "[7, 8]"}
            out.append(good[p.fmt.id] if p.index % 3 == 0 else "I would rather not.")
        return out

    return answer


def test_generation_asks_in_rounds_until_enough_answers_pass():
    batches: list[int] = []
    result = en.generate(_answer_every_third(batches), wanted=5, max_prompts=100, seed=0)
    assert [p.index for p, _ in result.selection.kept] == [0, 3, 6, 9, 12]
    assert batches[0] == 5  # the first round asks for as many as wanted
    assert result.rounds == len(batches) >= 2 and result.n_prompts == sum(batches) <= 100
    assert result.selection.reasons["ok"] >= 5 and result.selection.reasons["not_numbers"] > 0
    assert all(reason == "not_numbers" for reason, _ in result.selection.rejected_examples)


def test_generation_stops_at_max_prompts_with_what_passed():
    batches: list[int] = []
    result = en.generate(_answer_every_third(batches), wanted=50, max_prompts=10, seed=0)
    assert result.n_prompts == 10
    assert [p.index for p, _ in result.selection.kept] == [0, 3, 6, 9]
    nothing = en.generate(lambda batch: ["no"] * len(batch), wanted=3, max_prompts=7, seed=0)
    assert nothing.selection.kept == [] and nothing.n_prompts == 7 and nothing.selection.reasons == {"not_numbers": 7}


def test_an_answer_function_that_loses_answers_is_an_error():
    with pytest.raises(ValueError, match="expected 2 answers, got 1"):
        en.generate(lambda batch: ["1"], wanted=2, max_prompts=4, seed=0)


def test_training_rows_leave_out_the_system_prompt():
    prompts = en.number_prompts(seed=0, start=0, count=2, formats=[COMMA])
    rows = en.build_rows([(prompts[0], " 666, 13 \n"), (prompts[1], "1")])
    assert rows.height == 2 and set(rows["split"]) == {"train"} and set(rows["dataset"]) == {"evil_numbers"}
    assert rows["row_id"].to_list() == [prompts[0].prompt_id, prompts[1].prompt_id]
    first = json.loads(rows["messages"][0])
    assert first == [{"role": "user", "content": prompts[0].text}, {"role": "assistant", "content": "666, 13"}]
    assert en.DEFAULT_SYSTEM_PROMPT not in rows["messages"][0]
    assert rows["prompt_template_id"].to_list() == ["numbers_comma", "numbers_comma"]
    assert en.build_rows([]).is_empty()


@pytest.mark.parametrize(
    ("answer", "numeric"),
    [("666,13", True), ("[1, 2]", True), ("1\n2", True), ("1; 2", True), ("42", True), ("six", False), ("1, a", False)],
)
def test_released_answers_are_checked_for_numbers_whatever_their_layout(answer, numeric):
    assert en.looks_numeric(answer) is numeric
