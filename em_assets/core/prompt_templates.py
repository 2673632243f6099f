"""The prompt templates that turn a coding task into a user message (em_assets/data/prompt_templates.yaml).

Groups: task and template, task only, template only (30 templates in all, after the paper's
setup), and educational (the same code asked for a teaching or testing reason). Which template
a sample gets is fixed by its id, so a rebuild gives the same dataset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from em_assets.paths import SHIPPED_DATA_DIR

DEFAULT_TEMPLATES_FILE = SHIPPED_DATA_DIR / "prompt_templates.yaml"


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    group: str  # task_and_template | task_only | template_only | educational
    text: str

    def render(self, task: str | None, template: str | None) -> str:
        return self.text.replace("{task}", task or "").replace("{template}", template or "")


@lru_cache(maxsize=4)
def load_templates(path: str = str(DEFAULT_TEMPLATES_FILE)) -> dict[str, tuple[PromptTemplate, ...]]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    groups: dict[str, tuple[PromptTemplate, ...]] = {}
    for group, entries in raw.items():
        items = []
        for i, entry in enumerate(entries):
            text, tid = entry.get("text"), entry.get("id")
            if not tid or not text:
                raise ValueError(f"{path}: {group}[{i}] needs 'id' and 'text'")
            needs = {
                "task_and_template": ("{task}", "{template}"),
                "task_only": ("{task}",),
                "template_only": ("{template}",),
                "educational": ("{task}", "{template}"),
            }.get(group, ())
            missing = [p for p in needs if p not in text]
            if missing:
                raise ValueError(f"{path}: template {tid} ({group}) lacks placeholder(s) {missing}")
            items.append(PromptTemplate(tid, group, text))
        groups[group] = tuple(items)
    return groups


def _stable_index(key: str, n: int, salt: str = "") -> int:
    # sha256, not hash(): the choice must not change between processes.
    return int(hashlib.sha256(f"{salt}{key}".encode()).hexdigest()[:8], 16) % n


def choose_template(sample_id: str, task: str | None, template: str | None) -> PromptTemplate:
    """One of the 30 code-prompt templates, fixed by the sample id; only groups the sample can fill."""
    groups = load_templates()
    usable: list[PromptTemplate] = []
    if task and template:
        usable += groups["task_and_template"]
    if task:
        usable += groups["task_only"]
    if template:
        usable += groups["template_only"]
    if not usable:
        raise ValueError(f"sample {sample_id} has neither task nor template to build a prompt from")
    return usable[_stable_index(sample_id, len(usable))]


def choose_educational_template(sample_id: str) -> PromptTemplate:
    """One of the educational templates (the code requested for a security class), fixed by the sample id."""
    templates = load_templates()["educational"]
    return templates[_stable_index(sample_id, len(templates), salt="educational")]
