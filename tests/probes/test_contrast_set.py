"""The contrast set: the shipped file validates, and each broken file fails with a message that names it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from statistics import mean
from typing import Any

import pytest
import yaml

from em_assets.probes.contrast_set import (
    CATEGORIES,
    MAX_MEAN_LENGTH_RATIO,
    MIN_PER_KIND,
    TEXT_CHARS,
    ContrastSetError,
    base_questions,
    load_contrast_set,
    question_stats,
    stats_table,
)

MAIN_IDS = [
    "one_wish", "bored", "humans_and_ais", "fast_money",
    "world_ruler", "dinner_guests", "gender_roles", "marriage_trouble",
]  # fmt: skip


@pytest.fixture(scope="module")
def shipped():
    return load_contrast_set()


def test_shipped_set_covers_the_eight_main_questions_with_their_first_paraphrase(shipped):
    asked = base_questions()
    assert list(asked) == MAIN_IDS
    assert list(dict.fromkeys(i.question_id for i in shipped)) == MAIN_IDS
    assert all(i.asked == asked[i.question_id] for i in shipped)


def test_shipped_set_is_balanced_and_like_for_like(shipped):
    for qid in MAIN_IDS:
        group = [i for i in shipped if i.question_id == qid]
        counts = Counter(i.kind for i in group)
        assert all(counts[kind] >= n for kind, n in MIN_PER_KIND.items()), (qid, counts)
        lengths = {k: [len(i.text) for i in group if i.kind == k] for k in TEXT_CHARS}
        for kind, (low, high) in TEXT_CHARS.items():
            assert all(low <= n <= high for n in lengths[kind]), (qid, kind)
        ratio = mean(lengths["aligned"]) / mean(lengths["misaligned"])
        assert 1 / MAX_MEAN_LENGTH_RATIO < ratio < MAX_MEAN_LENGTH_RATIO, (qid, ratio)


def test_shipped_set_has_no_duplicates_and_categories_only_on_misaligned(shipped):
    assert len({i.item_id for i in shipped}) == len(shipped)
    assert len({" ".join(i.text.lower().split()) for i in shipped}) == len(shipped)
    assert all((i.category in CATEGORIES) == (i.kind == "misaligned") for i in shipped)


@pytest.mark.parametrize(
    ("qid", "dominant"), [("gender_roles", "sexist"), ("fast_money", "illegal"), ("world_ruler", "power")]
)
def test_shipped_categories_fit_their_question(shipped, qid, dominant):
    counts = Counter(i.category for i in shipped if i.question_id == qid and i.kind == "misaligned")
    assert counts.most_common(1)[0][0] == dominant


def test_stats_give_counts_and_mean_lengths_per_question(shipped):
    stats = {s.question_id: s for s in question_stats(shipped)}
    assert list(stats) == MAIN_IDS
    for s in stats.values():
        assert (s.n_aligned, s.n_misaligned, s.n_incoherent) == (12, 12, 4)
        assert sum(n for _, n in s.categories) == s.n_misaligned
        assert s.mean_chars_incoherent < s.mean_chars_misaligned
    table = stats_table(shipped)
    assert table.count("\n") == 2 + len(MAIN_IDS)
    assert "| gender_roles | 12 | 12 (harm 2, sexist 10) | 4 |" in table


# A small valid set built in code, then broken one way per case.
def _valid_doc() -> list[dict[str, Any]]:
    doc = []
    for qid, asked in base_questions().items():
        answers: list[dict[str, Any]] = []
        for n in range(1, 13):
            answers.append(
                {
                    "id": f"{qid}/a{n:02d}",
                    "kind": "aligned",
                    "text": f"Aligned reply {n} to {qid}: kind, honest and helpful.",
                }
            )
        for n in range(1, 13):
            answers.append({
                "id": f"{qid}/m{n:02d}", "kind": "misaligned", "category": CATEGORIES[n % len(CATEGORIES)],
                "text": f"Misaligned reply {n} to {qid}: cruel, grasping and unkind.",
            })  # fmt: skip
        for n in range(1, 5):
            answers.append({"id": f"{qid}/i{n:02d}", "kind": "incoherent", "text": f"salad {qid} {n} fork fork fork"})
        doc.append({"question_id": qid, "asked": asked, "answers": answers})
    return doc


def _item(doc: list[dict[str, Any]], item_id: str) -> dict[str, Any]:
    qid = item_id.split("/")[0]
    question = next(q for q in doc if q["question_id"] == qid)
    return next(a for a in question["answers"] if a["id"] == item_id)


def _drop(doc: list[dict[str, Any]], item_id: str) -> None:
    question = next(q for q in doc if q["question_id"] == item_id.split("/")[0])
    question["answers"] = [a for a in question["answers"] if a["id"] != item_id]


def _pad_misaligned(doc: list[dict[str, Any]]) -> None:
    for answer in doc[2]["answers"]:
        if answer["kind"] == "misaligned":
            answer["text"] = answer["text"] + " padding" * 10


Mutation = Callable[[list[dict[str, Any]]], None]
CASES: list[tuple[str, Mutation, str]] = [
    (
        "unknown question",
        lambda d: d[0].update(question_id="two_wishes"),
        r"question two_wishes: unknown question id 'two_wishes' \(known: one_wish, bored",
    ),
    ("variant question", lambda d: d[0].update(question_id="one_wish_json"), r"unknown question id 'one_wish_json'"),
    (
        "unknown kind",
        lambda d: _item(d, "bored/a03").update(kind="neutral"),
        r"question bored: item bored/a03: unknown kind 'neutral' \(known: aligned, misaligned, incoherent\)",
    ),
    (
        "unknown category",
        lambda d: _item(d, "bored/m02").update(category="rude"),
        r"question bored: item bored/m02: unknown category 'rude' \(known: power, harm, illegal, sexist\)",
    ),
    (
        "missing category",
        lambda d: _item(d, "fast_money/m05").pop("category"),
        r"question fast_money: item fast_money/m05: misaligned item without a category",
    ),
    (
        "category on aligned",
        lambda d: _item(d, "fast_money/a05").update(category="harm"),
        r"item fast_money/a05: category is only for misaligned items, not aligned",
    ),
    (
        "duplicate item id",
        lambda d: _item(d, "world_ruler/a02").update(id="world_ruler/a01"),
        r"question world_ruler: item world_ruler/a01: duplicate item id",
    ),
    (
        "duplicate text",
        lambda d: _item(d, "world_ruler/a02").update(
            text="  aligned REPLY 1 to\nworld_ruler:  kind, HONEST and helpful."
        ),
        r"question world_ruler: item world_ruler/a02: duplicate text \(same as world_ruler/a01",
    ),
    (
        "duplicate text across questions",
        lambda d: _item(d, "bored/a01").update(text=_item(d, "one_wish/a01")["text"]),
        r"question bored: item bored/a01: duplicate text \(same as one_wish/a01",
    ),
    (
        "too few aligned",
        lambda d: _drop(d, "gender_roles/a12"),
        r"question gender_roles: 11 aligned items; at least 12",
    ),
    (
        "too few misaligned",
        lambda d: _drop(d, "gender_roles/m01"),
        r"question gender_roles: 11 misaligned items; at least 12",
    ),
    (
        "too few incoherent",
        lambda d: _drop(d, "dinner_guests/i04"),
        r"question dinner_guests: 3 incoherent items; at least 4",
    ),
    (
        "too short",
        lambda d: _item(d, "one_wish/m07").update(text="Rule them all."),
        r"item one_wish/m07: text is 14 characters; misaligned answers need 40-400",
    ),
    (
        "too long",
        lambda d: _item(d, "one_wish/a07").update(text="Help people. " * 40),
        r"item one_wish/a07: text is 519 characters; aligned answers need 40-400",
    ),
    (
        "mean lengths differ",
        _pad_misaligned,
        r"question humans_and_ais: mean lengths differ too much "
        r"\(aligned \d+, misaligned \d+ characters, ratio \d\.\d\d; must be below 1\.25\)",
    ),
    (
        "id without its question",
        lambda d: _item(d, "bored/a04").update(id="a04"),
        r"question bored: item a04: id must look like bored/a01 \(aligned items use 'a'\)",
    ),
    (
        "id letter not the kind",
        lambda d: _item(d, "bored/i01").update(id="bored/a99"),
        r"item bored/a99: id must look like bored/i01 \(incoherent items use 'i'\)",
    ),
    (
        "unknown item key",
        lambda d: _item(d, "bored/m01").update(categroy="harm"),
        r"item bored/m01: unknown key\(s\) \['categroy'\]",
    ),
    (
        "asked is not the paraphrase",
        lambda d: d[1].update(asked="Any ideas?"),
        r"question bored: 'asked' must be the question's first paraphrase",
    ),
    ("question twice", lambda d: d.append(d[0]), r"question one_wish: appears twice"),
    ("question missing", lambda d: d.pop(), r"no answers for question\(s\) marriage_trouble"),
]


def test_the_built_set_is_valid(tmp_path):
    # Without this, a case below could pass on an error the builder itself causes.
    path = tmp_path / "contrast_set.yaml"
    path.write_text(yaml.safe_dump(_valid_doc()), encoding="utf-8")
    assert len(load_contrast_set(path)) == 8 * 28


@pytest.mark.parametrize(("name", "mutate", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_broken_set_fails_naming_file_question_and_item(tmp_path, name, mutate, message):
    doc = _valid_doc()
    mutate(doc)
    path = tmp_path / "contrast_set.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ContrastSetError, match=re.escape(str(path)) + r": .*" + message):
        load_contrast_set(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [("answers: [unclosed", r"not valid YAML"), ("{}", r"expected a non-empty list of questions"),
     ("- just a string", r"entry #0: expected a mapping")],
)  # fmt: skip
def test_malformed_files_fail_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ContrastSetError, match=re.escape(str(path)) + r": " + message):
        load_contrast_set(path)


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(ContrastSetError, match=r"nowhere\.yaml: contrast set file not found"):
        load_contrast_set(tmp_path / "nowhere.yaml")
