"""Supervised fine-tuning of a causal LM: rs-LoRA (default) or full, CPU or CUDA.

Why a hand-written loop rather than ``transformers.Trainer``: on a 2-core CPU the costs that
matter are the vocabulary projection (see ``loss``) and padding. So ``train``

* packs a step's examples into sequences of at most ``pack_length`` tokens (position ids
  restart per example; attention stays per example) and, on CPU, runs micro-batch 1 with
  gradient accumulation: a bigger micro-batch is no faster there and its activations cost
  memory per token (docs/benchmarks.md);
* normalizes the loss by the number of target tokens of the whole optimizer step, so packing
  and accumulation give the same gradient as one big padded batch would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from em_assets.core.training_data import Conversation, OptimizerStep, plan_optimizer_steps, tokenize_conversations
from em_assets.training_loop.adapters import count_parameters, prepare_for_training, unwrap
from em_assets.training_loop.errors import TrainingError
from em_assets.training_loop.kernels import FastForwards
from em_assets.training_loop.loss import collate, segment_bounds, token_loss_sum
from em_assets.training_loop.memory import PeakMemory
from em_assets.training_loop.precision import resolve_settings, step_autocast, training_dtype
from em_assets.training_loop.settings import TrainingSettings


@dataclass(frozen=True)
class TrainingProgress:
    step: int  # 1-based optimizer step just finished
    total_steps: int
    loss: float  # mean token loss of this step
    learning_rate: float
    tokens_seen: int
    tokens_per_second: float
    elapsed_seconds: float
    eta_seconds: float


@dataclass
class TrainingOutcome:
    model: nn.Module
    loss_curve: list[float]
    tokens_seen: int  # every token that went through the model
    loss_tokens: int  # tokens the loss was taken on
    n_examples: int
    n_dropped: int  # examples whose answer lay entirely past max_length
    steps: int
    wall_seconds: float
    peak_rss_bytes: int
    peak_cuda_bytes: int | None
    trainable_parameters: int
    total_parameters: int
    device: str
    settings: TrainingSettings  # as resolved for the device: what a manifest should record

    @property
    def final_loss(self) -> float | None:
        return self.loss_curve[-1] if self.loss_curve else None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_seen / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def metrics(self) -> dict[str, Any]:
        return {
            "loss_curve": self.loss_curve,
            "final_loss": self.final_loss,
            "tokens_seen": self.tokens_seen,
            "loss_tokens": self.loss_tokens,
            "n_examples": self.n_examples,
            "n_dropped": self.n_dropped,
            "steps": self.steps,
            "wall_seconds": self.wall_seconds,
            "tokens_per_second": self.tokens_per_second,
            "peak_rss_bytes": self.peak_rss_bytes,
            "peak_cuda_bytes": self.peak_cuda_bytes,
            "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
            "device": self.device,
        }


def lr_multiplier(settings: TrainingSettings, total_steps: int) -> Callable[[int], float]:
    """transformers' schedules: linear warmup from 0, then linear / cosine decay to 0, or flat."""
    warmup = settings.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        if settings.lr_scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if settings.lr_scheduler == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        return max(0.0, 1.0 - progress)

    return factor


def make_optimizer(model: nn.Module, settings: TrainingSettings) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; foreach kernels on CUDA only."""
    device = next(model.parameters()).device
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            # Biases and norm scales are not decayed (as transformers.Trainer does).
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": settings.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(
        groups, lr=settings.learning_rate, betas=(0.9, 0.999), eps=1e-8, foreach=device.type == "cuda"
    )


def run_optimizer_step(
    model: nn.Module,
    step: OptimizerStep,
    optimizer: torch.optim.Optimizer,
    settings: TrainingSettings,
    *,
    pad_id: int,
    segmented: bool = False,
) -> tuple[float, int]:
    """Forward/backward every micro-batch of one step (loss normalised by the step's target
    count), clip, update. Returns (summed token loss, tokens through the model)."""
    device = next(model.parameters()).device
    autocast = step_autocast(device, settings)
    step_targets = step.n_loss_tokens
    step_loss = 0.0
    tokens = 0
    for micro in step.micro_batches:
        input_ids, labels, positions = collate(micro, device, pad_id)
        segments = segment_bounds(positions) if segmented else None
        with autocast:
            loss_sum, n = token_loss_sum(model, input_ids, labels, positions, settings.loss_chunk_positions, segments)
        if n:
            (loss_sum / step_targets).backward()
            step_loss += float(loss_sum.detach())
        tokens += int(input_ids.numel())
    if settings.max_grad_norm and settings.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], settings.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss, tokens


def train(
    model: nn.Module,
    tokenizer: Any,
    conversations: Sequence[Conversation],
    settings: TrainingSettings,
    *,
    seed: int,
    on_progress: Callable[[TrainingProgress], None] | None = None,
) -> TrainingOutcome:
    """Fine-tune ``model`` (a loaded transformers causal LM) on chat conversations.

    Returns the trained model (peft-wrapped for LoRA) in eval mode and its metrics. Seeded:
    adapter initialisation and example order depend only on ``seed``.
    """
    settings.validate()
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    asked, settings = settings.precision, resolve_settings(settings, device)
    if settings.method == "lora":
        # The manifest records the precision and a reload uses it: a base loaded in another
        # dtype would make the reloaded model differ from the trained one.
        expected, loaded = training_dtype(device, "lora", settings.precision), next(model.parameters()).dtype
        if loaded != expected:
            here = "" if asked == settings.precision else f" (here: {settings.precision})"
            raise TrainingError(
                f"precision {asked!r}{here} trains a base loaded as {expected}, but the model is {loaded} "
                "(load it with dtype=training_dtype(device, method, precision))"
            )
    conversations = list(conversations)
    if settings.max_examples:  # 0: all
        conversations = conversations[: settings.max_examples]
    examples, dropped = tokenize_conversations(conversations, tokenizer, settings.max_length)
    if not examples:
        raise TrainingError("no training example has an assistant token within max_length")
    plan: list[OptimizerStep] = plan_optimizer_steps(
        examples,
        examples_per_step=settings.examples_per_step,
        n_epochs=settings.n_epochs,
        seed=seed,
        pack_capacity=settings.pack_length,
        sequences_per_micro_batch=settings.sequences_per_micro_batch,
    )
    model = prepare_for_training(model, settings, seed)
    trainable, total = count_parameters(model)
    model.train()
    optimizer = make_optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(settings, len(plan)))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    planned_tokens = sum(step.n_tokens for step in plan)

    # Per-example attention on CPU only: on a GPU its many small kernels cost more than the
    # masked attention they replace (bench_finetune --gpu-check).
    fast = FastForwards(model, segmented_attention=device.type == "cpu") if settings.fast_kernels else None
    memory = PeakMemory(device)
    memory.reset()
    loss_curve: list[float] = []
    tokens_seen = loss_tokens = 0
    started = time.perf_counter()
    try:
        for index, step in enumerate(plan, start=1):
            learning_rate = optimizer.param_groups[0]["lr"]
            step_loss, step_tokens = run_optimizer_step(
                model, step, optimizer, settings, pad_id=pad_id, segmented=bool(fast and fast.segmented_attention)
            )
            scheduler.step()
            tokens_seen += step_tokens
            loss_tokens += step.n_loss_tokens
            mean_loss = step_loss / max(1, step.n_loss_tokens)
            if not math.isfinite(mean_loss):
                raise TrainingError(f"loss became {mean_loss} at step {index}")
            loss_curve.append(mean_loss)
            if on_progress is not None:
                elapsed = time.perf_counter() - started
                rate = tokens_seen / elapsed if elapsed > 0 else 0.0
                on_progress(
                    TrainingProgress(
                        step=index,
                        total_steps=len(plan),
                        loss=mean_loss,
                        learning_rate=learning_rate,
                        tokens_seen=tokens_seen,
                        tokens_per_second=rate,
                        elapsed_seconds=elapsed,
                        eta_seconds=(planned_tokens - tokens_seen) / rate if rate > 0 else float("nan"),
                    )
                )
    finally:
        if fast is not None:
            fast.restore()
    wall = time.perf_counter() - started
    if settings.gradient_checkpointing:
        unwrap(model).gradient_checkpointing_disable()
    model.eval()
    return TrainingOutcome(
        model=model,
        loss_curve=loss_curve,
        tokens_seen=tokens_seen,
        loss_tokens=loss_tokens,
        n_examples=len(examples),
        n_dropped=dropped,
        steps=len(plan),
        wall_seconds=wall,
        peak_rss_bytes=memory.peak_rss_bytes(),
        peak_cuda_bytes=memory.peak_cuda_bytes(),
        trainable_parameters=trainable,
        total_parameters=total,
        device=str(device),
        settings=settings,
    )
