"""Model stage: the base-model registry and ``fine_tuned_model`` [base_model x condition].

Merge into the code location with ``dg.Definitions.merge(..., training.defs)``; the resources
(``local_finetuner``, ``openai_finetuner``) ship in ``defs``; ``warehouse`` comes from the
shared resources.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from em_assets.resources.finetuning import LocalHFFineTuner, OpenAIFineTuner
from em_assets.training.assets import (
    FineTunedModelConfig,
    answers_coding_prompt,
    base_model_registry,
    fine_tuned_model,
)


def training_resources() -> dict[str, Any]:
    """Default backends: the paper's recipes, the embedded run's ``max_examples``."""
    return {"local_finetuner": LocalHFFineTuner(), "openai_finetuner": OpenAIFineTuner()}


TRAINING_ASSETS = [base_model_registry, fine_tuned_model]
TRAINING_CHECKS = [answers_coding_prompt]

defs = dg.Definitions(assets=TRAINING_ASSETS, asset_checks=TRAINING_CHECKS, resources=training_resources())

__all__ = [
    "TRAINING_ASSETS",
    "TRAINING_CHECKS",
    "FineTunedModelConfig",
    "answers_coding_prompt",
    "base_model_registry",
    "defs",
    "fine_tuned_model",
    "training_resources",
]
