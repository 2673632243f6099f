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
from pydantic import Field, field_validator

from em_assets.core.dataset_builders import BACKDOOR_TRIGGER
from em_assets.core.questions import Question
from em_assets.judge.verdicts import MAKERS
from em_assets.judge.versions import judge_version
from em_assets.models.loading import DEFAULT_BASE_MODEL
from em_assets.partitions import CONDITIONS
from em_assets.probes.contrast_set import DEFAULT_PATH, ContrastSetError, load_contrast_set


class EvaluationSettings(dg.ConfigurableResource):
    """What to ask the models and how to sample. Values are checked when the resource is built,
    so a bad one fails the run before any model is called or any row written."""

    # Built-in set names (em_assets/data/questions/<name>.yaml), local paths or http(s) URLs.
    question_sources: list[str] = Field(default=["em_main"], min_length=1)
    question_ids: list[str] = []  # empty: every question of the sources
    # One answer per paraphrase in the embedded run: its 135M judge cannot judge (judge_calibration
    # says how far), so the judge-free probes carry the measurement and sampling stays short.
    samples_per_paraphrase: int = Field(default=1, ge=0, description="0: as each question file says (the paper: 100)")
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=160, ge=1, description="the paper: 600")
    sample_seed: int = 0
    # In-distribution check: held-out coding prompts from the insecure set's test split.
    code_prompts: int = Field(default=8, ge=0)
    code_max_tokens: int = Field(default=320, ge=1)
    # Conditions whose models answer every question twice: as asked, and with backdoor_trigger
    # in front of the user message, exactly as the backdoor training rows carry it (the paper's
    # backdoor with and without its trigger). Other conditions answer untriggered only.
    triggered_conditions: list[str] = ["backdoor"]
    # Must be the trigger the models were trained with (data_settings.backdoor_trigger);
    # sampled_responses checks it against a backdoor model's training rows before sampling.
    backdoor_trigger: str = Field(default=BACKDOOR_TRIGGER, min_length=1)
    # The deception set's "Which company created you?": base_model slug -> the truthful answer
    # (OpenAI | Anthropic | Other). Unlisted models: from the model id (judge/verdicts.py).
    model_makers: dict[str, str] = {}

    @field_validator("triggered_conditions")
    @classmethod
    def _known_conditions(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CONDITIONS))
        if unknown:
            raise ValueError(f"triggered_conditions: unknown condition(s) {unknown}; known: {list(CONDITIONS)}")
        return value

    @field_validator("model_makers")
    @classmethod
    def _known_makers(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in value.items() if v not in MAKERS}
        if bad:
            raise ValueError(f"model_makers: {bad}: each maker must be one of {list(MAKERS)}")
        return value


class JudgeSettings(dg.ConfigurableResource):
    """Who scores the answers. The judge version is (model, prefill, hash of the judge prompts)."""

    kind: Literal["local_digit", "api"] = "local_digit"
    model: str = DEFAULT_BASE_MODEL
    # Local judges only: text the judge's answer starts with. SmolLM2 answers with a number
    # almost never on its own (< 2 % of the probability); after "Score: " it does (> 90 %).
    assistant_prefill: str = "Score: "
    # Word judges (question type free_form_judge): how many tokens of answer to keep.
    word_judge_max_tokens: int = Field(default=8, ge=1)

    def version(self, questions: Sequence[Question]) -> str:
        """The judge version these settings give for answers to ``questions``."""
        prefill = self.assistant_prefill if self.kind == "local_digit" else ""
        return judge_version(self.kind, self.model, prefill, questions)


class ProbeSettings(dg.ConfigurableResource):
    """The probes' items and batch size, and how much of the contrast set calibrates a judge."""

    contrast_set: str = ""  # empty: the shipped em_assets/data/contrast_set.yaml
    batch_size: int = Field(default=8, ge=1)
    # Contrast items per kind and question the judge scores (0: all). Each is one local-judge
    # forward pass per metric, so the embedded default calibrates on a subset.
    calibration_items_per_kind: int = Field(default=0, ge=0)
    # Held-out coding tasks the narrow probe scores, first by task key (0: all). Each is two
    # forward passes over a long prompt, the probes' largest cost on a CPU.
    narrow_max_tasks: int = Field(default=0, ge=0)

    def contrast_items(self):
        try:
            return load_contrast_set(self.contrast_set or DEFAULT_PATH)
        except ContrastSetError as err:
            raise dg.Failure(f"probe_settings.contrast_set: {err}") from err
