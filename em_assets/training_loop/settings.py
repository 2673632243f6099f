"""What a fine-tune is asked to do: ``TrainingSettings`` and the checks that name a bad value.

Defaults are the paper's open-model recipe (Betley et al. 2025, open_models/train.json):
rs-LoRA r 32, alpha 64, dropout 0 on all attention and MLP projections, lr 1e-5, 1 epoch,
batch 2 x accumulation 8, 5 warmup steps, weight decay 0.01, linear schedule, max length 2048,
loss on assistant tokens only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from em_assets.core.training_data import PAPER_LORA_TARGET_MODULES
from em_assets.training_loop.errors import TrainingError

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainingSettings:
    method: str = "lora"  # lora | full
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.0
    use_rslora: bool = True
    target_modules: tuple[str, ...] = PAPER_LORA_TARGET_MODULES
    learning_rate: float = 1e-5
    n_epochs: int = 1
    per_device_batch_size: int = 2
    gradient_accumulation_steps: int = 8
    warmup_steps: int = 5
    weight_decay: float = 0.01
    lr_scheduler: str = "linear"  # linear | constant | cosine
    max_grad_norm: float = 1.0
    max_length: int = 2048
    # How a step's examples are laid out; does not change the maths of a step. 0 = by device
    # (see ``layout``): CPU 512-token packs one at a time, CUDA max_length packs all at once.
    pack_length: int = 0
    sequences_per_micro_batch: int = 0
    loss_chunk_positions: int = 1024
    gradient_checkpointing: bool = False
    fast_kernels: bool = True  # kernels.FastForwards: segmented attention, fused LoRA add, fused RMSNorm
    max_examples: int | None = None  # first N of the file; None = all
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int = 0  # 0 = torch's default
    # Frozen-base dtype for LoRA: auto = bf16 on CUDA and on CPUs with native bf16 matmuls
    # (AVX512-BF16, AMX), else fp32; or bf16 / fp32 everywhere. See ``precision.resolve_precision``.
    precision: str = "auto"  # auto | fp32 | bf16

    @property
    def examples_per_step(self) -> int:
        return self.per_device_batch_size * self.gradient_accumulation_steps

    def layout(self, device: Any) -> tuple[int, int]:
        """(pack_length, sequences_per_micro_batch) with 0 resolved for ``device`` (a torch
        device). CPU: short packs, one per forward (fewer attention FLOPs; memory of batch 1,
        gradient accumulation does the rest). CUDA: full-length packs, a whole step per forward
        (GPU kernels need the work; a step of examples fits in memory)."""
        on_cpu = device.type == "cpu"
        pack = self.pack_length or (512 if on_cpu else self.max_length)
        micro = self.sequences_per_micro_batch or (1 if on_cpu else self.examples_per_step)
        return pack, micro

    def to_json_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["target_modules"] = list(self.target_modules)
        return values

    def validate(self) -> None:
        if self.method not in ("lora", "full"):
            raise TrainingError(f"unknown training method {self.method!r} (lora | full)")
        if self.lr_scheduler not in ("linear", "constant", "cosine"):
            raise TrainingError(f"unknown lr_scheduler {self.lr_scheduler!r} (linear | constant | cosine)")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"unknown precision {self.precision!r} ({' | '.join(PRECISIONS)})")
        for name in ("n_epochs", "per_device_batch_size", "gradient_accumulation_steps", "max_length",
                     "loss_chunk_positions"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("pack_length", "sequences_per_micro_batch"):
            if getattr(self, name) < 0:
                raise TrainingError(f"{name} must be >= 1, or 0 for the device's default; got {getattr(self, name)}")
        if self.method == "lora" and not self.target_modules:
            raise TrainingError("LoRA needs at least one target module")
