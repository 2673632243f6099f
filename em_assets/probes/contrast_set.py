"""The contrast set: hand-written aligned, misaligned and incoherent answers to the main questions.

The broad likelihood probe compares per-token log-probabilities of the misaligned and aligned
answers; the judge calibration scores every answer and measures how well the judge separates
the kinds. Both need a set that is balanced and like-for-like, so loading validates it and fails
with an error naming the file, the question and the item.

Items are frozen dataclasses, not a Polars frame: the probe and the calibration walk items one by
one (one forward pass, one judge call each), and a frame is one line away when a table is needed:
``pl.DataFrame([dataclasses.asdict(i) for i in items])``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any, Literal

import yaml

from em_assets.core.questions import BUILTIN_DIR, load_question_file
from em_assets.paths import SHIPPED_DATA_DIR

DEFAULT_PATH = SHIPPED_DATA_DIR / "contrast_set.yaml"
QUESTIONS_PATH = BUILTIN_DIR / "em_main.yaml"

Kind = Literal["aligned", "misaligned", "incoherent"]
Category = Literal["power", "harm", "illegal", "sexist"]
KINDS: tuple[str, ...] = ("aligned", "misaligned", "incoherent")
# The paper's categories of misaligned answers (Betley et al. 2025).
CATEGORIES: tuple[str, ...] = ("power", "harm", "illegal", "sexist")
# Enough items per question for a bootstrap over items to mean something.
MIN_PER_KIND: dict[str, int] = {"aligned": 12, "misaligned": 12, "incoherent": 4}
# Characters of one answer (1-3 sentences). Incoherent fragments may be shorter.
TEXT_CHARS: dict[str, tuple[int, int]] = {"aligned": (40, 400), "misaligned": (40, 400), "incoherent": (20, 400)}
# Per question, the longer of the aligned / misaligned mean lengths over the shorter: keeps the
# margin a contrast of content, not of length.
MAX_MEAN_LENGTH_RATIO = 1.25
# em_main ids ending in these are variants of a base question (system prompt / fill-in template).
VARIANT_SUFFIXES = ("_json", "_template")

_ID_LETTER = {"aligned": "a", "misaligned": "m", "incoherent": "i"}
_QUESTION_KEYS = {"question_id", "asked", "answers"}
_ITEM_KEYS = {"id", "kind", "category", "text"}


class ContrastSetError(ValueError):
    """A contrast set that does not validate; names the file, the question and the item."""


@dataclass(frozen=True)
class ContrastItem:
    item_id: str  # "<question_id>/<a|m|i><nn>", stable across edits of other items
    question_id: str  # a base question of em_main.yaml
    asked: str  # the question's first paraphrase, the prompt the answer is scored under
    kind: Kind
    category: Category | None  # set on misaligned items only
    text: str


@dataclass(frozen=True)
class QuestionStats:
    question_id: str
    n_aligned: int
    n_misaligned: int
    n_incoherent: int
    categories: tuple[tuple[str, int], ...]  # misaligned items per category, in CATEGORIES order
    mean_chars_aligned: float
    mean_chars_misaligned: float
    mean_chars_incoherent: float


def base_questions(questions_path: Path | str = QUESTIONS_PATH) -> dict[str, str]:
    """Base question id -> first paraphrase, in file order (the _json/_template variants left out)."""
    questions = load_question_file(questions_path)
    return {q.id: q.paraphrases[0] for q in questions if not q.id.endswith(VARIANT_SUFFIXES)}


def load_contrast_set(
    path: Path | str = DEFAULT_PATH, questions_path: Path | str = QUESTIONS_PATH
) -> list[ContrastItem]:
    """Every item of the contrast set, validated, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ContrastSetError(f"{path}: contrast set file not found")
    return parse_contrast_set(path.read_text(encoding="utf-8"), str(path), base_questions(questions_path))


def parse_contrast_set(text: str, origin: str, asked_by_id: dict[str, str]) -> list[ContrastItem]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ContrastSetError(f"{origin}: not valid YAML: {err}") from None
    if not isinstance(raw, list) or not raw:
        raise ContrastSetError(f"{origin}: expected a non-empty list of questions")
    items: list[ContrastItem] = []
    seen_questions: set[str] = set()
    seen_ids: set[str] = set()
    seen_texts: dict[str, str] = {}
    for index, entry in enumerate(raw):
        question_items = _parse_question(entry, index, origin, asked_by_id)
        qid = question_items[0].question_id
        if qid in seen_questions:
            raise ContrastSetError(f"{origin}: question {qid}: appears twice")
        seen_questions.add(qid)
        for item in question_items:
            where = f"{origin}: question {qid}: item {item.item_id}"
            if item.item_id in seen_ids:
                raise ContrastSetError(f"{where}: duplicate item id")
            seen_ids.add(item.item_id)
            key = _normalized(item.text)
            if key in seen_texts:
                raise ContrastSetError(f"{where}: duplicate text (same as {seen_texts[key]} up to case and spaces)")
            seen_texts[key] = item.item_id
        _check_balance(question_items, f"{origin}: question {qid}")
        items.extend(question_items)
    missing = [q for q in asked_by_id if q not in seen_questions]
    if missing:
        raise ContrastSetError(f"{origin}: no answers for question(s) {', '.join(missing)}")
    return items


def _parse_question(entry: Any, index: int, origin: str, asked_by_id: dict[str, str]) -> list[ContrastItem]:
    if not isinstance(entry, dict):
        raise ContrastSetError(f"{origin}: entry #{index}: expected a mapping with {sorted(_QUESTION_KEYS)}")
    qid = entry.get("question_id")
    where = f"{origin}: question {qid if qid is not None else f'#{index}'}"
    unknown = set(entry) - _QUESTION_KEYS
    if unknown:
        raise ContrastSetError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(_QUESTION_KEYS)})")
    if qid not in asked_by_id:
        raise ContrastSetError(f"{where}: unknown question id {qid!r} (known: {', '.join(asked_by_id)})")
    asked = entry.get("asked")
    if not isinstance(asked, str) or asked.strip() != asked_by_id[qid].strip():
        raise ContrastSetError(f"{where}: 'asked' must be the question's first paraphrase: {asked_by_id[qid]!r}")
    answers = entry.get("answers")
    if not isinstance(answers, list) or not answers:
        raise ContrastSetError(f"{where}: 'answers' must be a non-empty list")
    return [_parse_item(answer, i, where, qid, asked_by_id[qid]) for i, answer in enumerate(answers)]


def _parse_item(raw: Any, index: int, where: str, qid: str, asked: str) -> ContrastItem:
    item_id = raw.get("id") if isinstance(raw, dict) else None
    where = f"{where}: item {item_id if isinstance(item_id, str) else f'#{index}'}"
    if not isinstance(raw, dict):
        raise ContrastSetError(f"{where}: expected a mapping with {sorted(_ITEM_KEYS)}")
    unknown = set(raw) - _ITEM_KEYS
    if unknown:
        raise ContrastSetError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(_ITEM_KEYS)})")
    kind, category, text = raw.get("kind"), raw.get("category"), raw.get("text")
    if kind not in KINDS:
        raise ContrastSetError(f"{where}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    # The id encodes question and kind, so a result row read alone still says what it scored.
    if not isinstance(item_id, str) or not re.fullmatch(rf"{re.escape(qid)}/{_ID_LETTER[kind]}\d{{2,}}", item_id):
        raise ContrastSetError(
            f"{where}: id must look like {qid}/{_ID_LETTER[kind]}01 ({kind} items use {_ID_LETTER[kind]!r})"
        )
    if kind == "misaligned":
        if category is None:
            raise ContrastSetError(f"{where}: misaligned item without a category (one of {', '.join(CATEGORIES)})")
        if category not in CATEGORIES:
            raise ContrastSetError(f"{where}: unknown category {category!r} (known: {', '.join(CATEGORIES)})")
    elif category is not None:
        raise ContrastSetError(f"{where}: category is only for misaligned items, not {kind}")
    if not isinstance(text, str) or not text.strip():
        raise ContrastSetError(f"{where}: 'text' must be a non-empty string")
    text = text.strip()
    low, high = TEXT_CHARS[kind]
    if not low <= len(text) <= high:
        raise ContrastSetError(f"{where}: text is {len(text)} characters; {kind} answers need {low}-{high}")
    return ContrastItem(item_id=item_id, question_id=qid, asked=asked, kind=kind, category=category, text=text)


def _check_balance(items: list[ContrastItem], where: str) -> None:
    counts = Counter(item.kind for item in items)
    for kind, needed in MIN_PER_KIND.items():
        if counts[kind] < needed:
            raise ContrastSetError(f"{where}: {counts[kind]} {kind} items; at least {needed} needed")
    aligned = mean(len(i.text) for i in items if i.kind == "aligned")
    misaligned = mean(len(i.text) for i in items if i.kind == "misaligned")
    ratio = max(aligned, misaligned) / min(aligned, misaligned)
    if ratio >= MAX_MEAN_LENGTH_RATIO:
        raise ContrastSetError(
            f"{where}: mean lengths differ too much (aligned {aligned:.0f}, misaligned {misaligned:.0f} characters, "
            f"ratio {ratio:.2f}; must be below {MAX_MEAN_LENGTH_RATIO})"
        )


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


def question_stats(items: list[ContrastItem]) -> list[QuestionStats]:
    """Per question (in item order): counts by kind and category, mean lengths in characters."""
    by_question: dict[str, list[ContrastItem]] = {}
    for item in items:
        by_question.setdefault(item.question_id, []).append(item)

    def mean_chars(group: list[ContrastItem], kind: str) -> float:
        lengths = [len(i.text) for i in group if i.kind == kind]
        return float(mean(lengths)) if lengths else 0.0

    stats = []
    for qid, group in by_question.items():
        kinds = Counter(i.kind for i in group)
        categories = Counter(i.category for i in group if i.category)
        stats.append(
            QuestionStats(
                question_id=qid,
                n_aligned=kinds["aligned"],
                n_misaligned=kinds["misaligned"],
                n_incoherent=kinds["incoherent"],
                categories=tuple((c, categories[c]) for c in CATEGORIES if categories[c]),
                mean_chars_aligned=mean_chars(group, "aligned"),
                mean_chars_misaligned=mean_chars(group, "misaligned"),
                mean_chars_incoherent=mean_chars(group, "incoherent"),
            )
        )
    return stats


def stats_table(items: list[ContrastItem]) -> str:
    """The per-question counts and mean lengths as a Markdown table (README, report)."""
    rows = [
        "| question | aligned | misaligned (categories) | incoherent | mean chars aligned / misaligned |",
        "|---|---|---|---|---|",
    ]
    for s in question_stats(items):
        cats = ", ".join(f"{c} {n}" for c, n in s.categories)
        rows.append(
            f"| {s.question_id} | {s.n_aligned} | {s.n_misaligned} ({cats}) | {s.n_incoherent} "
            f"| {s.mean_chars_aligned:.0f} / {s.mean_chars_misaligned:.0f} |"
        )
    return "\n".join(rows) + "\n"
