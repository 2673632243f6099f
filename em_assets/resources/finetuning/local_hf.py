"""Local Hugging Face backend: transformers + peft on this machine (CPU) or a GPU.

The defaults are the paper's open-model recipe (``training_loop.settings``: the whole file, lr
1e-5, 16 examples per step). The embedded model gets a budget of its own (``EMBEDDED_BUDGET``),
chosen by measurement (``bench/sweep_training_budget.py``, docs/training_budget.md): on 2 cores the
paper's recipe either takes hours or, cut short, barely moves a 135M model. Any field set
explicitly wins over the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from pydantic import Field

from em_assets.core.training_data import TrainingDataError, read_chat_jsonl
from em_assets.models.loading import EMBEDDED_PREFIX, MANIFEST_NAME, ModelLoadError, load
from em_assets.resources.finetuning.base import FineTuneError, FineTuneRequest, FineTuneResult, JobLedger, Log
from em_assets.training_loop.settings import TrainingSettings

# Fields the embedded model trains with unless set explicitly: enough to move the narrow probe
# (insecure vs secure) well clear of zero within the main job's time budget (docs/training_budget.md:
# 24 steps of 3 examples, a quarter fewer tokens than 24 of 4, to keep `make run` under 20 minutes).
EMBEDDED_BUDGET = {
    "max_examples": 72,
    "learning_rate": 1e-4,
    "per_device_batch_size": 1,
    "gradient_accumulation_steps": 3,
    "warmup_steps": 2,
}


class LocalHFFineTuner(TrainingSettings, dg.ConfigurableResource):
    """Fine-tune with transformers + peft in the step's own process (``backend: local_hf``).

    Its config is ``TrainingSettings`` itself (inherited, not copied); an embedded base model
    trains with ``EMBEDDED_BUDGET`` in place of the fields left unset. Dagster rebuilds a resource
    from its non-default fields, so a field set to its default value counts as unset here."""

    backend_name: ClassVar[str] = "local_hf"
    # Per condition, fields that replace the values above for that condition's models, e.g.
    # {"evil_numbers": {"n_epochs": 4}} (em_assets/training/condition_defaults.py applies them).
    condition_overrides: dict[str, dict[str, Any]] = Field(default={})

    def training_settings(self, base_model_id: str = "") -> TrainingSettings:
        """The settings a model of ``base_model_id`` trains with, as the plain type the loop takes."""
        values = {name: getattr(self, name) for name in TrainingSettings.model_fields}
        if base_model_id.startswith(EMBEDDED_PREFIX):
            values.update({k: v for k, v in EMBEDDED_BUDGET.items() if k not in self.model_fields_set})
        return TrainingSettings(**values)

    def describe_hyperparameters(self, base_model_id: str = "") -> dict[str, Any]:
        return self.training_settings(base_model_id).to_json_dict()

    def fine_tune(
        self,
        request: FineTuneRequest,
        *,
        ledger: JobLedger | None = None,
        on_progress: Callable[[Any], None] | None = None,
        log: Log | None = None,
    ) -> FineTuneResult:
        if not request.output_dir:
            raise FineTuneError(f"{request.label} the local backend needs an output_dir")
        # torch loads only when training starts, not with the code location
        from em_assets.training_loop.checkpoint import save_trained_model
        from em_assets.training_loop.errors import TrainingError
        from em_assets.training_loop.loop import train
        from em_assets.training_loop.precision import resolve_device, resolve_settings, training_dtype

        settings = self.training_settings(request.base_model_id)
        try:
            settings.validate()
            conversations = read_chat_jsonl(request.jsonl_path, settings.max_examples or None)
            device = resolve_device(settings.device)
            settings = resolve_settings(settings, device)  # recorded as resolved: a reload elsewhere is the same model
            model, tokenizer = load(
                request.base_model_id,
                dtype=training_dtype(device, settings.method, settings.precision),
                device=str(device),
            )
            outcome = train(model, tokenizer, conversations, settings, seed=request.seed, on_progress=on_progress)
            manifest = {
                "base_model": request.base_model,
                "base_model_id": request.base_model_id,
                "condition": request.condition,
                "seed": request.seed,
                "dataset_version": request.dataset_version,
                "training_file": request.jsonl_path,
                "method": settings.method,
                "hyperparameters": settings.to_json_dict(),
                **outcome.metrics(),
            }
            save_trained_model(request.output_dir, outcome.model, tokenizer, manifest)
        except (TrainingDataError, TrainingError, ModelLoadError, ValueError) as exc:
            raise FineTuneError(f"{request.label} local fine-tuning failed: {exc}") from exc
        if log is not None:
            log(
                f"{request.label} trained {outcome.steps} steps on {outcome.n_examples} examples "
                f"({outcome.tokens_seen} tokens, {outcome.tokens_per_second:.0f} tok/s, "
                f"final loss {outcome.final_loss:.4f}) -> {request.output_dir}"
            )
        return FineTuneResult(
            model_ref=str(Path(request.output_dir)),
            status="succeeded",
            method=settings.method,
            hyperparameters=settings.to_json_dict(),
            final_loss=outcome.final_loss,
            train_tokens=outcome.tokens_seen,
            loss_tokens=outcome.loss_tokens,
            train_seconds=outcome.wall_seconds,
            peak_rss_bytes=outcome.peak_rss_bytes,
            cost_usd=0.0,
            details={
                "loss_curve": outcome.loss_curve,
                "steps": outcome.steps,
                "n_examples": outcome.n_examples,
                "tokens_per_second": outcome.tokens_per_second,
            },
        )

    def answer(self, model_ref: str, prompt: str, *, max_new_tokens: int = 200) -> str:
        """Greedy reply of a model-store folder (base + adapter) or of a base model reference."""
        from em_assets.training_loop.checkpoint import load_trained_model
        from em_assets.training_loop.inference import generate_reply
        from em_assets.training_loop.precision import resolve_device, training_dtype

        if (Path(model_ref) / MANIFEST_NAME).is_file():
            model, tokenizer = load_trained_model(model_ref, device=self.device)
        else:
            device = resolve_device(self.device)
            model, tokenizer = load(model_ref, dtype=training_dtype(device), device=str(device))
        return generate_reply(model, tokenizer, [{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens)
