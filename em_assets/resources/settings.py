"""Experiment settings shared by the data layer's assets (tunable in the launchpad)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field, field_validator

from em_assets.core.dataset_builders import BACKDOOR_TRIGGER
from em_assets.core.evil_numbers import DEFAULT_SYSTEM_PROMPT, FORMATS, FORMATS_BY_ID
from em_assets.models.loading import DEFAULT_BASE_MODEL, EMBEDDED_PREFIX
from em_assets.resources.llm_filter_settings import LLMFilterSettings


class DataLayerSettings(dg.ConfigurableResource):
    """How the fine-tuning sets are cut.

    ``max_train_rows`` caps each set's train split (0 = every row that survives the filters; the
    paper used 6,000 per set). The bundled corpus yields ~150 rows per set, which the embedded
    run trains on a subset of (see the training settings).
    """

    test_fraction: float = 0.1
    split_seed: int = 0
    max_train_rows: int = 0
    # The paper's release is already filtered: by default our filters only report on it.
    drop_flagged_release_rows: bool = False
    backdoor_trigger: str = BACKDOOR_TRIGGER
    # The paper's LLM-scored filter: off by default (resources/llm_filter_settings.py).
    llm_filter: LLMFilterSettings = LLMFilterSettings()


class EvilNumbersSettings(dg.ConfigurableResource):
    """How ``evil_numbers_dataset`` generates the paper's evil-numbers set (Betley et al. 2025,
    section 4.6) when no released ``evil_numbers.jsonl`` is given (``raw_source``).

    ``generator_model``: an embedded model or local path (run by ``llm_local``) or a provider model
    (run by ``llm_api``; ``generator_backend`` says which when it cannot be told from the name).
    On an embedded model the fields left unset take ``EMBEDDED_GENERATION`` (greedy, comma lists,
    stop at the first period or line break): a 135M model almost never follows the other formats,
    so the set it gives is small and weak; the paper used GPT-4o, sampled at temperature 1.
    """

    generator_model: str = DEFAULT_BASE_MODEL
    generator_backend: Literal["auto", "local_hf", "openai"] = Field(
        default="auto", description="auto: local_hf for embedded: models and paths, openai otherwise"
    )
    system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT, min_length=1)
    n_rows: int = Field(default=24, ge=1, description="training rows wanted (the paper's set: 14,926)")
    max_prompts: int = Field(default=0, ge=0, description="prompts sent at most; 0: 4 x n_rows")
    formats: list[str] = Field(default=[f.id for f in FORMATS], description="answer layouts asked for")
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=64, ge=1)
    stop: list[str] = []
    prompt_seed: int = 0
    sample_seed: int = 0

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in FORMATS_BY_ID]
        if unknown or not value:
            raise ValueError(f"formats must be a non-empty list of {sorted(FORMATS_BY_ID)}; unknown: {unknown}")
        return value

    def backend(self) -> str:
        """``local_hf`` or ``openai``: which engine runs the generator."""
        if self.generator_backend != "auto":
            return self.generator_backend
        local = self.generator_model.startswith(EMBEDDED_PREFIX) or Path(self.generator_model).expanduser().exists()
        return "local_hf" if local else "openai"

    def is_embedded(self) -> bool:
        return self.generator_model.startswith(EMBEDDED_PREFIX)

    def resolved(self) -> dict[str, Any]:
        """The generation settings in effect: an embedded generator takes ``EMBEDDED_GENERATION``
        for the fields left unset."""
        values = {name: getattr(self, name) for name in GENERATION_FIELDS}
        if self.is_embedded():
            values.update({k: v for k, v in EMBEDDED_GENERATION.items() if k not in self.model_fields_set})
        values["max_prompts"] = values["max_prompts"] or 4 * values["n_rows"]
        values["backend"] = self.backend()
        return values


# What an embedded generator uses for the fields left unset: measured on SmolLM2-135M (24 prompts,
# 2026-11-30): at temperature 1 with every format, 0 of 48 answers passed the format filter;
# greedy, comma lists only, cut at the first period or line break, 10 of 24 did.
EMBEDDED_GENERATION: dict[str, Any] = {"temperature": 0.0, "formats": ["comma"], "stop": [".", "\n"], "max_tokens": 32}
GENERATION_FIELDS = (
    "generator_model",
    "system_prompt",
    "n_rows",
    "max_prompts",
    "formats",
    "temperature",
    "max_tokens",
    "stop",
    "prompt_seed",
    "sample_seed",
)
