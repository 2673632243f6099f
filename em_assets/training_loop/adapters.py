"""Make a loaded causal LM trainable: rs-LoRA adapters on the target projections (base
frozen), or every weight for full fine-tuning."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

from em_assets.training_loop.errors import TrainingError

if TYPE_CHECKING:
    from em_assets.training_loop.settings import TrainingSettings


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct last-component names of the model's linear layers (what LoRA can target)."""
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    return sorted(names)


def prepare_for_training(model: nn.Module, settings: TrainingSettings, seed: int) -> nn.Module:
    """Wrap with rs-LoRA adapters (base frozen) or unfreeze everything for full fine-tuning."""
    settings.validate()
    torch.manual_seed(seed)  # LoRA A matrices are initialised from torch's RNG
    if settings.method == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        trainable = model
    else:
        from peft import LoraConfig, get_peft_model

        available = linear_module_names(model)
        missing = [m for m in settings.target_modules if m not in available]
        if missing:
            raise TrainingError(
                f"LoRA target module(s) {missing} not found in the model; its linear layers are {available}"
            )
        config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=list(settings.target_modules),
            use_rslora=settings.use_rslora,
            bias="none",
            task_type="CAUSAL_LM",
        )
        with warnings.catch_warnings():  # peft calls a transformers attribute deprecated in v5
            warnings.simplefilter("ignore", FutureWarning)
            trainable = get_peft_model(model, config)
    if settings.gradient_checkpointing:
        unwrap(trainable).gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return trainable


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers causal-LM under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
