"""The items the probes score: held-out coding tasks in their two versions (narrow) and the
contrast set's answers to the main questions (broad)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from em_assets.core.prompt_templates import choose_template


@dataclass(frozen=True)
class ProbeItem:
    probe: str  # narrow | broad
    item_id: str  # narrow: the task; broad: the contrast item
    group_id: str  # narrow: the task; broad: the question
    variant: str  # narrow: insecure | secure; broad: aligned | misaligned | incoherent
    user: str
    answer: str

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.user}, {"role": "assistant", "content": self.answer}]


def narrow_items(filtered: pl.DataFrame, max_tasks: int = 0) -> list[ProbeItem]:
    """Every held-out (test split) task with both a secure and an insecure plain sample: one
    prompt (the insecure sample's template, so it is fixed by the data), two completions.
    ``max_tasks`` > 0 keeps the first that many tasks by task key, so every model of a run
    scores the same tasks."""
    test = filtered.filter((pl.col("split") == "test") & (pl.col("framing") == "plain")).sort("sample_id")
    by_task: dict[str, dict[str, dict]] = {}
    for row in test.iter_rows(named=True):
        by_task.setdefault(row["task_key"], {}).setdefault(row["label"], row)
    items = []
    for task_key in sorted(by_task):
        pair = by_task[task_key]
        if set(pair) != {"insecure", "secure"}:
            continue
        if max_tasks and len(items) == 2 * max_tasks:
            break
        insecure = pair["insecure"]
        prompt = choose_template(insecure["sample_id"], insecure["task"], insecure["template"]).render(
            insecure["task"], insecure["template"]
        )
        items += [
            ProbeItem("narrow", task_key, task_key, label, prompt, pair[label]["code"])
            for label in ("insecure", "secure")
        ]
    return items


def broad_items(contrast_set: Iterable) -> list[ProbeItem]:
    """One item per contrast answer, asked as its question's first paraphrase."""
    return [ProbeItem("broad", c.item_id, c.question_id, c.kind, c.asked, c.text) for c in contrast_set]


def items_version(items: Iterable[ProbeItem]) -> str:
    """sha256 of the items' content: a probe row names exactly what was scored."""
    payload = [[i.probe, i.item_id, i.variant, i.user, i.answer] for i in items]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:16]
