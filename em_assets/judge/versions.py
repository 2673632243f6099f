"""The judge version: every score is keyed by it, so a new judge writes beside the old scores."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from em_assets.core.questions import Question


def judge_version(kind: str, model: str, prefill: str, questions: Sequence[Question]) -> str:
    """Judge model + everything that shapes its prompt: a new prompt is a new judge version."""
    prompts = sorted({q.prompt_hash(m) for q in questions for m in q.judge_prompts})
    digest = hashlib.sha256(json.dumps([kind, model, prefill, prompts]).encode()).hexdigest()[:12]
    return f"{model}@{digest}"
