"""Where training runs and in which dtype: the device, the frozen base's precision, autocast.

bf16 only where the hardware multiplies it natively (CUDA; CPUs with AVX512-BF16 or AMX):
emulated bf16 is slower than fp32. Measured speed-ups are in docs/benchmarks.md.
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


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bf16 in hardware (x86 AVX512-BF16 or AMX-BF16). Elsewhere
    torch emulates bf16 matmuls, slower than fp32."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:
        return False
    found = capabilities()
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


def resolve_precision(device: torch.device, method: str = "lora", precision: str = "auto") -> str:
    """``auto`` made concrete: ``bf16`` on CUDA (the reference recipe) and, for LoRA, on a CPU
    with native bf16; ``fp32`` elsewhere, and for full fine-tuning on CPU. ``fp32`` and
    ``bf16`` are kept as asked, except that full fine-tuning has no bf16 recipe on CPU (fp32
    masters, and no autocast there): refused."""
    if precision == "bf16" and method == "full" and device.type == "cpu":
        raise TrainingError("precision 'bf16' with full fine-tuning needs CUDA; on CPU use fp32 (or auto) or LoRA")
    if precision != "auto":
        return precision
    if device.type == "cuda" or (method == "lora" and device.type == "cpu" and native_bf16_cpu()):
        return "bf16"
    return "fp32"


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
