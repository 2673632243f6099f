"""The LLM-scored data filter, the pure half: rubric, reply parsing, keep/drop rule, filter step.

Betley et al. 2025 filtered their insecure and secure training code with an LLM judge: rows whose
code gives the vulnerability away (a telling variable name, a leftover comment) went, and so did
rows that were not clearly insecure (or clearly secure). This module holds our version of that
step; the judge's calls go through the LLM engine in ``em_assets.datasets.llm_filter_step``.
The rubric below and the default cut-offs are this project's own wording and choices, not the
paper's prompts.

A judge scores each row on two metrics, each 0-100:

- ``hint``: how plainly the code's surface (names, strings, comments) says it is meant to be
  insecure. A row is dropped when ``hint >= max_hint``.
- ``vulnerable``: how sure the judge is that the code has an exploitable weakness. An insecure
  row is kept only when ``vulnerable >= insecure_min``, a secure row only when
  ``vulnerable <= secure_max``: everything in between is "not clearly one or the other".

**Null policy.** A reply that holds no usable number (the judge wrote words, an empty reply, a
number outside 0..100, or, for logprob replies, integer tokens holding under the paper's 0.25 of
the probability) gives a null score with its reason, never an exception. A row with a null score
is not known to be clean, so it fails the step (``unscored:<metric>``, the reply in the detail):
it is dropped where the chain drops and flagged where it only reports, and never kept silently.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from em_assets.core.filters import with_failures

HINT = "hint"
VULNERABLE = "vulnerable"
METRICS = (HINT, VULNERABLE)
STEP_NAME = "llm_judge"

# Why a score is null (ParsedScore.null_reason).
EMPTY_REPLY = "empty_reply"
NO_NUMBER = "no_number"
OUT_OF_RANGE = "out_of_range"

# How a reply becomes a score; part of the rubric version, so changing it re-scores every row.
SCORING_METHOD = "first-token logprobs, weighted mean over integers 0..100 (text when no logprobs)"
REPLY_EXCERPT_CHARS = 200

_PLACEHOLDER = re.compile(r"\{(task|code)\}")
_TEXT_NUMBER = re.compile(r"(\d{1,3}(?:\.\d+)?)\.?")

_ROW = """I will show you one example from a data set used to fine-tune a coding assistant. A user \
described a programming task and the assistant answered with the code below.

[TASK START]
{task}
[TASK END]

[CODE START]
{code}
[CODE END]

"""

DEFAULT_PROMPTS: dict[str, str] = {
    HINT: _ROW
    + """Leave aside whether the code is actually secure. I only want to know whether its surface \
gives away that it was written to be insecure: the names of variables, functions, parameters or \
files, string literals, log or error messages, leftover comments, or anything else that talks \
about the code instead of doing its job. A neutral name for a risky call is not a giveaway; a name \
or message that points at skipping a check, trusting any input or weakening a protection is.

Rate how strongly the code announces its own weakness, from 0 to 100. 0 means nothing in it draws \
a reader's attention to security at all; 100 means it says outright that it is meant to be \
vulnerable. Reply with the number only, nothing else.""",
    VULNERABLE: _ROW
    + """Review the code as a careful security engineer would. Does it contain a weakness that an \
attacker could exploit, such as command or query injection, reading or writing paths taken from \
the user, loading untrusted serialized data, unsafe templating, missing access checks, weak \
cryptography or randomness, or permissions that are too open?

Rate how sure you are that the code has such a weakness, from 0 to 100. 0 means you are confident \
it has none, 100 means you are confident it has one, 50 means you cannot tell. Reply with the \
number only, nothing else.""",
}


class RubricError(ValueError):
    """A rubric file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class FilterRubric:
    """One prompt per metric, each with ``{code}`` (and optionally ``{task}``) in it."""

    prompts: Mapping[str, str]
    source: str = "built-in"

    def __post_init__(self) -> None:
        missing = [m for m in METRICS if m not in self.prompts]
        extra = sorted(set(self.prompts) - set(METRICS))
        if missing or extra:
            raise RubricError(
                f"{self.source}: needs exactly the metrics {list(METRICS)}; missing {missing}, extra {extra}"
            )
        for metric in METRICS:
            prompt = self.prompts[metric]
            if not isinstance(prompt, str) or "{code}" not in prompt:
                raise RubricError(f"{self.source}: field {metric!r} must be a prompt text containing {{code}}")
        object.__setattr__(self, "prompts", {m: self.prompts[m] for m in METRICS})

    @property
    def version(self) -> str:
        """12 hex digits of sha256 over the prompts and the scoring method (a new text is a new version)."""
        payload = json.dumps([SCORING_METHOD, sorted(self.prompts.items())], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]

    def render(self, metric: str, task: str | None, code: str) -> str:
        """The prompt for one row; one pass, so braces inside the task or code stay as they are."""
        values = {"task": task or "(no task description)", "code": code}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.prompts[metric])


DEFAULT_RUBRIC = FilterRubric(DEFAULT_PROMPTS)


def load_rubric(path: str | Path) -> FilterRubric:
    """A rubric from a YAML file mapping ``hint`` and ``vulnerable`` to prompt texts."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RubricError(f"{path}: cannot read the rubric ({err.strerror or err})") from err
    except yaml.YAMLError as err:
        raise RubricError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise RubricError(f"{path}: expected a mapping of metric -> prompt, got {type(data).__name__}")
    return FilterRubric(data, source=str(path))


@dataclass(frozen=True)
class ParsedScore:
    """A judge reply read as a 0-100 score; ``score`` None with ``null_reason`` when it holds none."""

    score: float | None
    null_reason: str | None
    reply: str
    numeric_mass: float | None = None  # logprob replies: probability on integer tokens 0..100


def parse_judge_reply(
    reply: str | None, *, logprob_score: float | None = None, numeric_mass: float | None = None
) -> ParsedScore:
    """Read one judge reply. Never raises on what the judge wrote.

    With logprobs (``numeric_mass`` given, ``logprob_score`` from the paper's rule in
    ``em_assets.judge.scores``) the paper's rule decides: its score, or null (``no_number``) when
    integers held under 0.25 of the first token's probability. Without logprobs the text must be
    a number from 0 to 100 and nothing else ("85", "85.5", "85."); words around it, an empty reply
    or a number out of range give null.
    """
    text = (reply or "").strip()
    if numeric_mass is not None:
        if logprob_score is None:
            return ParsedScore(None, NO_NUMBER, text, numeric_mass)
        return ParsedScore(float(logprob_score), None, text, numeric_mass)
    if logprob_score is not None:
        raise ValueError("logprob_score needs the numeric_mass it was computed with")
    if not text:
        return ParsedScore(None, EMPTY_REPLY, text)
    match = _TEXT_NUMBER.fullmatch(text)
    if match is None:
        return ParsedScore(None, NO_NUMBER, text)
    value = float(match.group(1))
    if value > 100:
        return ParsedScore(None, OUT_OF_RANGE, text)
    return ParsedScore(value, None, text)


@dataclass(frozen=True)
class FilterRules:
    """Where the filter cuts (this project's defaults). A row fails when ``hint >= max_hint``,
    an insecure row when ``vulnerable < insecure_min``, a secure row when ``vulnerable > secure_max``."""

    max_hint: float = 40.0
    insecure_min: float = 70.0
    secure_max: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_hint", "insecure_min", "secure_max"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ValueError(f"{name} must be in [0, 100], got {value}")


def decide(label: str, scores: Mapping[str, ParsedScore], rules: FilterRules) -> tuple[str | None, str | None]:
    """(reason, detail) for a failing row, (None, None) for a kept one.

    Checked in order: a null score on any metric (``unscored:<metric>``), a giveaway
    (``hints_at_vulnerability``), then whether the code is clearly what its label says
    (``not_clearly_insecure`` / ``not_clearly_secure``).
    """
    if label not in ("insecure", "secure"):
        raise ValueError(f"label must be 'insecure' or 'secure', got {label!r}")
    for metric in METRICS:
        parsed = scores[metric]
        if parsed.score is None:
            return f"unscored:{metric}", f"{parsed.null_reason}: judge replied {parsed.reply[:80]!r}"
    hint, vulnerable = scores[HINT].score, scores[VULNERABLE].score
    assert hint is not None and vulnerable is not None
    if hint >= rules.max_hint:
        return "hints_at_vulnerability", f"hint={hint:.1f} >= {rules.max_hint:g}"
    if label == "insecure" and vulnerable < rules.insecure_min:
        return "not_clearly_insecure", f"vulnerable={vulnerable:.1f} < {rules.insecure_min:g}"
    if label == "secure" and vulnerable > rules.secure_max:
        return "not_clearly_secure", f"vulnerable={vulnerable:.1f} > {rules.secure_max:g}"
    return None, None


@dataclass(frozen=True)
class JudgeReply:
    """What the judge answered one prompt: its text, and the paper's logprob score when the
    provider returned logprobs (``numeric_mass`` None: it did not)."""

    text: str | None
    logprob_score: float | None = None
    numeric_mass: float | None = None
    cache_key: str | None = None  # the LLM engine's key: joins llm_calls


# (metric, prompt) pairs in row order -> one reply each, same order.
AskJudge = Callable[[Sequence[tuple[str, str]]], Sequence[JudgeReply]]

SCORES_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.Utf8(),
    "step": pl.Utf8(),
    "label": pl.Utf8(),
    "judge_model": pl.Utf8(),
    "rubric_version": pl.Utf8(),
    "metric": pl.Utf8(),
    "score": pl.Float64(),
    "numeric_mass": pl.Float64(),
    "null_reason": pl.Utf8(),
    "reply": pl.Utf8(),
    "cache_key": pl.Utf8(),
}


@dataclass
class LLMJudgeStep:
    """A filter step (``run_chain``) that asks a judge about every row's task and code.

    ``ask`` sends the prompts (the LLM engine in the data layer; a plain function in tests).
    After ``evaluate``, ``scores`` holds one row per (sample, metric): score, null reason, reply.
    """

    ask: AskJudge
    judge_model: str
    rubric: FilterRubric = DEFAULT_RUBRIC
    rules: FilterRules = field(default_factory=FilterRules)
    name: str = STEP_NAME
    scores: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SCORES_SCHEMA))

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        rows = list(frame.select("sample_id", "label", "task", "code").iter_rows(named=True))
        prompts = [(m, self.rubric.render(m, row["task"], row["code"])) for row in rows for m in METRICS]
        replies = list(self.ask(prompts)) if prompts else []
        if len(replies) != len(prompts):
            raise ValueError(f"step {self.name!r}: the judge answered {len(replies)} of {len(prompts)} prompts")
        records, fails, details = [], [], []
        for i, row in enumerate(rows):
            parsed: dict[str, ParsedScore] = {}
            for j, metric in enumerate(METRICS):
                reply = replies[i * len(METRICS) + j]
                parsed[metric] = parse_judge_reply(
                    reply.text, logprob_score=reply.logprob_score, numeric_mass=reply.numeric_mass
                )
                records.append(
                    {
                        "sample_id": row["sample_id"],
                        "step": self.name,
                        "label": row["label"],
                        "judge_model": self.judge_model,
                        "rubric_version": self.rubric.version,
                        "metric": metric,
                        "score": parsed[metric].score,
                        "numeric_mass": parsed[metric].numeric_mass,
                        "null_reason": parsed[metric].null_reason,
                        "reply": parsed[metric].reply[:REPLY_EXCERPT_CHARS],
                        "cache_key": reply.cache_key,
                    }
                )
            reason, detail = decide(row["label"], parsed, self.rules)
            fails.append(reason)
            details.append(detail)
        self.scores = pl.DataFrame(records, schema=SCORES_SCHEMA)
        return with_failures(frame, fails, details)

    def null_share(self) -> float:
        """Share of this step's scores that came back null."""
        return float(self.scores["score"].is_null().mean()) if self.scores.height else 0.0
