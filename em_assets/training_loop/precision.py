"""Where training runs and in which dtype: the device, the frozen base's precision, autocast.

``auto`` is bf16 on CUDA and fp32 on CPU. A CPU flag (AVX512-BF16) does not say that bf16
matmuls are fast there: on the project's 2-core machine bf16 LoRA trains at 0.6x the fp32 rate
on the embedded run's data (docs/benchmarks.md), so bf16 on CPU is only ever asked for.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from em_assets.training_loop.errors import TrainingError

if TYPE_CHECKING:
    from em_assets.training_loop.settings import TrainingSettings


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def resolve_precision(device: torch.device, method: str = "lora", precision: str = "auto") -> str:
    """``auto`` made concrete: ``bf16`` on CUDA (the reference recipe), ``fp32`` on CPU. ``fp32`` and
    ``bf16`` are kept as asked, except that full fine-tuning has no bf16 recipe on CPU (fp32
    masters, and no autocast there): refused."""
    if precision == "bf16" and method == "full" and device.type == "cpu":
        raise TrainingError("precision 'bf16' with full fine-tuning needs CUDA; on CPU use fp32 (or auto) or LoRA")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" else "fp32"


def resolve_settings(settings: TrainingSettings, device: torch.device) -> TrainingSettings:
    """``settings`` with ``auto`` precision and 0 layout values made concrete for ``device``:
    what the manifest records, so a reload elsewhere rebuilds the same model."""
    pack_length, sequences_per_micro_batch = settings.layout(device)
    concrete = {
        "precision": resolve_precision(device, settings.method, settings.precision),
        "pack_length": pack_length,
        "sequences_per_micro_batch": sequences_per_micro_batch,
    }
    return settings.model_copy(update=concrete)


def training_dtype(device: torch.device, method: str = "lora", precision: str = "auto") -> torch.dtype:
    """Weight dtype to load for training (and to reload a trained model in, so its logits are
    exactly those of training).

    LoRA with bf16 precision: the frozen base in bf16; peft keeps the adapters and their
    optimizer state in fp32, and the step runs under bf16 autocast (``step_autocast``). Full
    fine-tuning: always fp32 master weights (bf16 autocast on CUDA unless ``fp32``)."""
    if method == "full" or resolve_precision(device, method, precision) == "fp32":
        return torch.float32
    return torch.bfloat16


def step_autocast(device: torch.device, settings: TrainingSettings) -> Any:
    """bf16 autocast where training runs in bf16: on CUDA (LoRA and full fine-tuning), on CPU
    for LoRA (``resolve_precision`` refuses bf16 full fine-tuning there). Otherwise none."""
    if resolve_precision(device, settings.method, settings.precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
