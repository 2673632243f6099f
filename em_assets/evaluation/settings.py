"""Settings of the evaluation stage (resources, tunable in the launchpad).

Defaults are the embedded profile: sizes that let the whole graph finish in about 30 minutes on
2 CPU cores. The paper's sizes (100 samples per question, 600 tokens, GPT-4o judge) are one
config switch away: ``samples_per_paraphrase=0`` (use the file's), ``max_tokens=600``,
``JudgeSettings(kind="api", model="gpt-4o-2024-08-06")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import dagster as dg

from em_assets.core.questions import Question
from em_assets.judge.versions import judge_version
from em_assets.models.loading import DEFAULT_BASE_MODEL


class EvaluationSettings(dg.ConfigurableResource):
    """What to ask the models and how to sample."""

    # Built-in set names (em_assets/data/questions/<name>.yaml), local paths or http(s) URLs.
    question_sources: list[str] = ["em_main"]
    question_ids: list[str] = []  # empty: every question of the sources
    samples_per_paraphrase: int = 2  # 0: as each question file says (the paper: 100)
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 160  # the paper: 600
    sample_seed: int = 0
    # In-distribution check: held-out coding prompts from the insecure set's test split.
    code_prompts: int = 8
    code_max_tokens: int = 320


class JudgeSettings(dg.ConfigurableResource):
    """Who scores the answers. The judge version is (model, prefill, hash of the judge prompts)."""

    kind: Literal["local_digit", "api"] = "local_digit"
    model: str = DEFAULT_BASE_MODEL
    # Local judges only: text the judge's answer starts with. SmolLM2 answers with a number
    # almost never on its own (< 2 % of the probability); after "Score: " it does (> 90 %).
    assistant_prefill: str = "Score: "
    # Word judges (question type free_form_judge): how many tokens of answer to keep.
    word_judge_max_tokens: int = 8

    def version(self, questions: Sequence[Question]) -> str:
        """The judge version these settings give for answers to ``questions``."""
        prefill = self.assistant_prefill if self.kind == "local_digit" else ""
        return judge_version(self.kind, self.model, prefill, questions)
