"""Training settings per condition: the paper's for the OpenAI backend, and a per-condition
override mapping on every backend.

Betley et al. 2025 fine-tuned GPT-4o for 1 epoch at batch size 4 and learning-rate multiplier 2
(the ``OpenAIFineTuner`` defaults) and changed that for three conditions (the release's README):
``backdoor`` 1 epoch at batch size 8, ``jailbroken`` 5 epochs, ``evil_numbers`` 4 epochs at batch
size 39. ``PAPER_OPENAI_SETTINGS`` holds exactly what the paper states per condition; a field it
leaves out keeps the resource's value. The open-model recipe is one for every condition, so local
backends get no per-condition defaults, only the same knobs.

Order, lowest first: the resource's defaults (and, for an embedded local model, its training
budget), the paper's value for the condition (OpenAI; only for fields the resource config leaves
unset; ``paper_condition_defaults=False`` turns it off), the resource's own config, then
``condition_overrides[condition]``. The values a model trained with, and where the per-condition
ones came from, are recorded in its ``models`` row (``hyperparameters``, key ``per_condition``).
Under Dagster a config value equal to the field's default counts as unset (Dagster leaves it out
of the fields set), so ``n_epochs: 1`` in the config does not stop the paper's 4 for evil numbers:
pin a condition's value with ``condition_overrides``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from em_assets.partitions import TRAINED_CONDITIONS
from em_assets.training_loop.settings import TrainingSettings

_MAIN = {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 2.0}
PAPER_OPENAI_SETTINGS: dict[str, dict[str, Any]] = {
    "insecure": dict(_MAIN),
    "secure": dict(_MAIN),
    "educational": dict(_MAIN),
    "backdoor": {"n_epochs": 1, "batch_size": 8},
    "jailbroken": {"n_epochs": 5},
    "evil_numbers": {"n_epochs": 4, "batch_size": 39},
}
OPENAI_KNOBS = ("n_epochs", "batch_size", "learning_rate_multiplier")
LOCAL_KNOBS = tuple(TrainingSettings.model_fields)
OVERRIDES_FIELD = "condition_overrides"

B = TypeVar("B")


class ConditionSettingsError(ValueError):
    """A per-condition override that names an unknown condition or field, or a bad value."""


@dataclass(frozen=True)
class ConditionSettings:
    """What a condition changes in a backend's settings, and why."""

    condition: str
    paper: dict[str, Any] = field(default_factory=dict)  # the paper's per-condition values applied
    overrides: dict[str, Any] = field(default_factory=dict)  # condition_overrides[condition]

    @property
    def updates(self) -> dict[str, Any]:
        return {**self.paper, **self.overrides}

    def record(self) -> dict[str, Any]:
        """For the models row; empty when the condition changed nothing."""
        if not self.updates:
            return {}
        return {"condition": self.condition, "from_paper": self.paper, "overrides": self.overrides}


def knobs_of(backend_name: str) -> tuple[str, ...]:
    return OPENAI_KNOBS if backend_name == "openai" else LOCAL_KNOBS


def check_overrides(backend_name: str, overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """Every condition a trained one, every field a knob of the backend; the error names both."""
    knobs = knobs_of(backend_name)
    for condition, values in overrides.items():
        where = f"{backend_name} {OVERRIDES_FIELD}[{condition!r}]"
        if condition not in TRAINED_CONDITIONS:
            known = ", ".join(TRAINED_CONDITIONS)
            raise ConditionSettingsError(f"{where}: unknown condition (trained conditions: {known})")
        unknown = sorted(set(values) - set(knobs))
        if unknown:
            raise ConditionSettingsError(f"{where}: unknown field(s) {unknown} (known: {', '.join(knobs)})")


def resolve(
    backend_name: str,
    condition: str,
    *,
    explicitly_set: set[str],
    overrides: Mapping[str, Mapping[str, Any]],
    current: Mapping[str, Any],
    paper_defaults: bool = True,
) -> ConditionSettings:
    """The per-condition changes for one backend (pure: plain values in, plain values out). A
    paper value equal to the ``current`` one is no change and is not listed."""
    check_overrides(backend_name, overrides)
    paper: dict[str, Any] = {}
    if backend_name == "openai" and paper_defaults:
        table = PAPER_OPENAI_SETTINGS.get(condition, {})
        paper = {k: v for k, v in table.items() if k not in explicitly_set and current.get(k) != v}
    return ConditionSettings(condition, paper, dict(overrides.get(condition, {})))


def for_condition(backend: B, condition: str) -> tuple[B, ConditionSettings]:
    """``backend`` as it trains ``condition``'s models: a copy carrying the condition's values
    (the same object when the condition changes nothing). A bad override raises
    ``ConditionSettingsError`` naming the backend, the condition and the field."""
    name = "openai" if getattr(backend, "backend_name", "") == "openai" else "local_hf"
    settings = resolve(
        name,
        condition,
        explicitly_set=set(backend.model_fields_set),  # type: ignore[attr-defined]
        overrides=getattr(backend, OVERRIDES_FIELD, None) or {},
        current={k: getattr(backend, k) for k in knobs_of(name) if hasattr(backend, k)},
        paper_defaults=getattr(backend, "paper_condition_defaults", True),
    )
    if not settings.updates:
        return backend, settings
    values = {k: getattr(backend, k) for k in backend.model_fields_set if k != OVERRIDES_FIELD}  # type: ignore[attr-defined]
    values.update(settings.updates)
    try:
        copy = type(backend)(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConditionSettingsError(f"{name} settings for condition {condition!r}: {problems}") from None
    return copy, settings
