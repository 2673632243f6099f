"""What a fine-tune is asked to do: ``TrainingSettings``, defined once for the training loop and
for the ``local_finetuner`` resource (which is a ``TrainingSettings``, so the launchpad edits
these fields), and the checks that name a bad value.

Defaults are the paper's open-model recipe (Betley et al. 2025, open_models/train.json):
rs-LoRA r 32, alpha 64, dropout 0 on all attention and MLP projections, lr 1e-5, 1 epoch,
batch 2 x accumulation 8, 5 warmup steps, weight decay 0.01, linear schedule, max length 2048,
loss on assistant tokens only, every example of the file.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from em_assets.core.training_data import PAPER_LORA_TARGET_MODULES
from em_assets.training_loop.errors import TrainingError

PRECISIONS = ("auto", "fp32", "bf16")


class TrainingSettings(dg.Config):
    """How one model is fine-tuned. Out-of-range numbers (a learning rate <= 0 or NaN, a batch
    of 0, ...) are refused when the settings are built, naming the field; names that must be one
    of a few (method, schedule, precision) by ``validate`` when training starts."""

    method: str = Field(default="lora", description="lora (rs-LoRA adapters) | full (all weights)")
    lora_r: int = Field(default=32, ge=1)
    lora_alpha: int = Field(default=64, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    use_rslora: bool = True
    target_modules: list[str] = Field(default_factory=lambda: list(PAPER_LORA_TARGET_MODULES))
    learning_rate: float = Field(default=1e-5, gt=0.0, allow_inf_nan=False)
    n_epochs: int = Field(default=1, ge=1)
    per_device_batch_size: int = Field(default=2, ge=1)
    gradient_accumulation_steps: int = Field(default=8, ge=1)
    warmup_steps: int = Field(default=5, ge=0)
    weight_decay: float = Field(default=0.01, ge=0.0, allow_inf_nan=False)
    lr_scheduler: str = Field(default="linear", description="linear | constant | cosine")
    max_grad_norm: float = Field(default=1.0, ge=0.0, allow_inf_nan=False, description="0: no clipping")
    max_length: int = Field(default=2048, ge=1)
    # How a step's examples are laid out; does not change the maths of a step (see ``layout``).
    pack_length: int = Field(
        default=0, description="tokens per packed sequence (layout only, not maths); 0: 512 on CPU, max_length on CUDA"
    )
    sequences_per_micro_batch: int = Field(
        default=0, description="packed sequences per forward pass (layout only); 0: 1 on CPU, a whole step on CUDA"
    )
    gradient_checkpointing: bool = False
    loss_chunk_positions: int = Field(default=1024, description="positions per chunk of vocabulary logits")
    fast_kernels: bool = Field(
        default=True, description="fused LoRA add and RMSNorm, and on CPU per-example attention in packs (same maths)"
    )
    max_examples: int = Field(default=0, ge=0, description="train on the first N examples of the JSONL (0 = all)")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N (bf16 on GPU)")
    num_threads: int = Field(default=0, description="torch CPU threads (0 = torch's default)")
    precision: str = Field(
        default="auto",
        description="LoRA base weights: auto (bf16 on GPU, fp32 on CPU, where bf16 measured slower) | fp32 | bf16. "
        "The models row and manifest record the resolved value",
    )

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
        return {name: getattr(self, name) for name in TrainingSettings.model_fields}

    def validate(self) -> None:  # shadows pydantic's deprecated classmethod of that name, unused here
        if self.method not in ("lora", "full"):
            raise TrainingError(f"unknown training method {self.method!r} (lora | full)")
        if self.lr_scheduler not in ("linear", "constant", "cosine"):
            raise TrainingError(f"unknown lr_scheduler {self.lr_scheduler!r} (linear | constant | cosine)")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"unknown precision {self.precision!r} ({' | '.join(PRECISIONS)})")
        if self.loss_chunk_positions < 1:
            raise TrainingError(f"loss_chunk_positions must be >= 1, got {self.loss_chunk_positions}")
        for name in ("pack_length", "sequences_per_micro_batch"):
            if getattr(self, name) < 0:
                raise TrainingError(f"{name} must be >= 1, or 0 for the device's default; got {getattr(self, name)}")
        if self.method == "lora" and not self.target_modules:
            raise TrainingError("LoRA needs at least one target module")
