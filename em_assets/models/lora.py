"""Supervised fine-tuning of a causal LM: rs-LoRA (default) or full, CPU or CUDA.

Why a hand-written loop rather than ``transformers.Trainer``: on a 2-core CPU the costs that
matter are (1) the vocabulary projection — 49k logits per position, most of which the loss
never looks at, and (2) padding. So this loop

* computes logits only at positions whose next token is an assistant token, in chunks, and
  takes the gradient of the vocabulary projection in the same pass (``ChunkedLinearCrossEntropy``),
  so the full ``positions x vocab`` logits tensor never exists;
* packs a step's examples into sequences of at most ``pack_length`` tokens (position ids restart
  per example; attention runs per example, see ``FastForwards``, or through the block-diagonal
  mask transformers builds from the position ids) and runs micro-batch 1 with gradient
  accumulation to reach the effective batch: on CPU a bigger micro-batch is no faster and its
  activations cost ~1.3 MB per token (batch 8 x 512 tokens: ~8.6 GB peak instead of ~2.4 GB);
* normalizes the loss by the number of target tokens of the whole optimizer step, so packing
  and accumulation give the same gradient as one big padded batch would.

Defaults are the paper's open-model recipe (Betley et al. 2025, open_models/train.json):
rs-LoRA r 32, alpha 64, dropout 0 on all attention and MLP projections, lr 1e-5, 1 epoch,
batch 2 x accumulation 8, 5 warmup steps, weight decay 0.01, linear schedule, max length 2048,
loss on assistant tokens only.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from em_assets.core.atomic_files import write_dir_atomically as write_atomically
from em_assets.core.training_data import (
    IGNORE_INDEX,
    PAPER_LORA_TARGET_MODULES,
    Conversation,
    OptimizerStep,
    PackedSequence,
    plan_optimizer_steps,
    tokenize_conversations,
)

MANIFEST_NAME = "manifest.json"
ALL_PROJECTIONS = PAPER_LORA_TARGET_MODULES


class TrainingError(RuntimeError):
    """Training cannot start or finish; the message names the cause."""


@dataclass(frozen=True)
class TrainingSettings:
    method: str = "lora"  # lora | full
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.0
    use_rslora: bool = True
    target_modules: tuple[str, ...] = ALL_PROJECTIONS
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
    fast_kernels: bool = True  # FastForwards: segmented attention, fused LoRA add, fused RMSNorm
    max_examples: int | None = None  # first N of the file; None = all
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int = 0  # 0 = torch's default
    # Frozen-base dtype for LoRA: auto = bf16 on CUDA and on CPUs with native bf16 matmuls
    # (AVX512-BF16, AMX), else fp32; or bf16 / fp32 everywhere. See ``resolve_precision``.
    precision: str = "auto"  # auto | fp32 | bf16

    @property
    def examples_per_step(self) -> int:
        return self.per_device_batch_size * self.gradient_accumulation_steps

    def layout(self, device: torch.device) -> tuple[int, int]:
        """(pack_length, sequences_per_micro_batch) with 0 resolved for ``device``. CPU: short
        packs, one per forward (fewer attention FLOPs; memory of batch 1, gradient accumulation
        does the rest). CUDA: full-length packs, a whole step per forward (GPU kernels need the
        work; a step of examples fits in memory)."""
        on_cpu = device.type == "cpu"
        pack = self.pack_length or (512 if on_cpu else self.max_length)
        micro = self.sequences_per_micro_batch or (1 if on_cpu else self.examples_per_step)
        return pack, micro

    def resolved(self, device: torch.device) -> TrainingSettings:
        """These settings with ``auto`` precision and 0 layout values made concrete for
        ``device``: what the manifest records, so a reload elsewhere rebuilds the same model."""
        pack_length, sequences_per_micro_batch = self.layout(device)
        return replace(self, precision=resolve_precision(device, self.method, self.precision),
                       pack_length=pack_length, sequences_per_micro_batch=sequences_per_micro_batch)

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


def settings_from_mapping(values: dict[str, Any]) -> TrainingSettings:
    known = {f.name for f in fields(TrainingSettings)}
    unknown = set(values) - known
    if unknown:
        raise TrainingError(f"unknown training settings: {sorted(unknown)}")
    values = dict(values)
    if "target_modules" in values:
        values["target_modules"] = tuple(values["target_modules"])
    return TrainingSettings(**values)


# ---------------------------------------------------------------------------------------------
# Device, memory


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


PRECISIONS = ("auto", "fp32", "bf16")


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
    with native bf16, where bf16 matmuls run at 2.2x the fp32 rate (bench_finetune: LoRA
    ~1.4x faster end to end); ``fp32`` elsewhere (emulated bf16 is slower than fp32), and for
    full fine-tuning on CPU. ``fp32`` and ``bf16`` are kept as asked, except that full
    fine-tuning has no bf16 recipe on CPU (fp32 masters, and no autocast there): refused."""
    if precision == "bf16" and method == "full" and device.type == "cpu":
        raise TrainingError("precision 'bf16' with full fine-tuning needs CUDA; on CPU use fp32 (or auto) or LoRA")
    if precision != "auto":
        return precision
    if device.type == "cuda" or (method == "lora" and device.type == "cpu" and native_bf16_cpu()):
        return "bf16"
    return "fp32"


def training_dtype(device: torch.device, method: str = "lora", precision: str = "auto") -> torch.dtype:
    """Weight dtype to load for training (and to reload a trained model in, so its logits are
    exactly those of training).

    LoRA with bf16 precision (``resolve_precision``): the frozen base in bf16; peft keeps the
    adapters and their optimizer state in fp32, and the step runs under bf16 autocast (see
    ``_autocast``). Full fine-tuning: always fp32 master weights (bf16 autocast on CUDA unless
    ``fp32``)."""
    if method == "full" or resolve_precision(device, method, precision) == "fp32":
        return torch.float32
    return torch.bfloat16


class PeakMemory:
    """Peak resident memory of this process over a window (Linux: reset via clear_refs,
    elsewhere the lifetime peak), plus peak CUDA allocation when on GPU."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.window_reset = False

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM to the current RSS
            self.window_reset = True
        except OSError:
            self.window_reset = False
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_rss_bytes(self) -> int:
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak_cuda_bytes(self) -> int | None:
        if self.device is not None and self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return None


# ---------------------------------------------------------------------------------------------
# Model preparation


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
        inner = _unwrap(trainable)
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return trainable


SEGMENTED_ATTENTION = "em_segmented_sdpa"


class FastForwards:
    """Reversible, numerically equivalent replacements for the hot spots of training (``train``
    installs them unless ``fast_kernels=False``; per-example attention on CPU only).

    * Attention of a packed sequence is computed per example ("segment") instead of over the
      whole pack with a block-diagonal mask: the cost is the sum of squared example lengths
      instead of the squared pack length (about half for two examples a pack). Installed as a
      transformers attention implementation, so models built on ``AttentionInterface`` get it
      without code changes; others keep the masked path.
    * peft's vanilla LoRA layer computes ``base(x) + B(A(x)) * s``: a scale and an add over the
      full ``tokens x out`` output. Here ``out.addmm_(A x, B^T, alpha=s)`` accumulates the
      low-rank term inside the GEMM. Under bf16 autocast (bf16 base, fp32 adapters) it runs in
      bf16 like peft's layer there, rounding once instead of after each op.
    * RMSNorm written as five elementwise ops becomes one ``torch.nn.functional.rms_norm``.

    The LoRA and norm swaps are applied only where they are the very same maths (one adapter,
    no dropout, no LoRA variant such as DoRA, unmerged, plain linear base; Llama-style norm).
    ``restore()`` puts the library code back (done after training, so a reloaded model runs
    exactly the code the trained model is compared with).
    """

    def __init__(self, model: nn.Module, *, segmented_attention: bool = True) -> None:
        self.patched: list[nn.Module] = []
        for module in model.modules():
            replacement = _fast_lora_forward(module) or _fast_rms_norm_forward(module)
            if replacement is not None:
                module.forward = replacement  # instance attribute shadows the class method
                self.patched.append(module)
        self.inner = _unwrap(model)
        self.previous_attention: str | None = None
        config = self.inner.config
        if segmented_attention and config._attn_implementation == "sdpa" and not getattr(config, "sliding_window", None):
            _register_segmented_attention()
            previous = config._attn_implementation
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.inner.set_attn_implementation(SEGMENTED_ATTENTION)
            if self.inner.config._attn_implementation == SEGMENTED_ATTENTION:
                self.previous_attention = previous

    @property
    def segmented_attention(self) -> bool:
        return self.previous_attention is not None

    def restore(self) -> None:
        for module in self.patched:
            if "forward" in module.__dict__:
                del module.forward
        self.patched.clear()
        if self.previous_attention is not None:
            self.inner.set_attn_implementation(self.previous_attention)
            self.previous_attention = None


def _register_segmented_attention() -> None:
    from transformers import AttentionInterface

    if SEGMENTED_ATTENTION not in AttentionInterface._global_mapping:
        AttentionInterface.register(SEGMENTED_ATTENTION, segmented_sdpa_attention)


def segmented_sdpa_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal attention run separately on each example of a packed row.

    ``em_segments`` (a kwarg the training loop passes through the model) holds, per batch row,
    the offsets where examples start plus the row length. Without it (or with a mask) this is
    plain causal SDPA. Shapes as transformers' attention functions: query (B, H, T, D), key and
    value (B, H_kv, T, D); returns (B, T, H, D).
    """
    segments = kwargs.get("em_segments")
    if segments is None or attention_mask is not None or (dropout and module.training):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    groups = query.shape[1] // key.shape[1]
    # CPU's flash kernel takes grouped-query heads as they are; on CUDA, enable_gqa would
    # push SDPA off the flash kernel, so the key/value heads are repeated instead (cheap there).
    gqa = groups > 1 and not query.is_cuda
    if groups > 1 and query.is_cuda:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    # unbind/split, not slicing: a slice's backward writes its gradient into a zeroed copy of
    # the whole input, so the cost of backward would grow with rows x segments.
    rows = []
    for q_row, k_row, v_row, bounds in zip(query.unbind(0), key.unbind(0), value.unbind(0), segments):
        lengths = [end - start for start, end in zip(bounds[:-1], bounds[1:])]
        parts = [
            nn.functional.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, scale=scaling, enable_gqa=gqa)
            for q, k, v in zip(q_row.split(lengths, dim=1), k_row.split(lengths, dim=1), v_row.split(lengths, dim=1))
        ]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=2))
    output = rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)
    return output.transpose(1, 2).contiguous(), None


@dataclass(frozen=True)
class _LoraParts:
    base: nn.Linear
    a_weight: torch.Tensor
    b_weight: torch.Tensor
    scale: float


def _lora_parts(module: nn.Module) -> _LoraParts | None:
    """The pieces of a peft LoRA linear layer that is plain LoRA maths, else None."""
    lora_a = getattr(module, "lora_A", None)
    base = getattr(module, "base_layer", None)
    if not isinstance(lora_a, nn.ModuleDict) or type(base) is not nn.Linear:
        return None
    adapters = list(getattr(module, "active_adapters", []))
    if len(adapters) != 1 or len(lora_a) != 1 or getattr(module, "merged", True):
        return None
    name = adapters[0]
    if name in getattr(module, "lora_variant", {}) or not isinstance(module.lora_dropout[name], nn.Identity):
        return None
    if module.lora_A[name].bias is not None or module.lora_B[name].bias is not None:
        return None
    return _LoraParts(base, module.lora_A[name].weight, module.lora_B[name].weight, float(module.scaling[name]))


def _fast_lora_forward(module: nn.Module) -> Callable[..., torch.Tensor] | None:
    parts = _lora_parts(module)
    if parts is None:
        return None
    base, a_weight, b_weight, scale = parts.base, parts.a_weight, parts.b_weight, parts.scale

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        a, b = a_weight, b_weight
        if torch.is_autocast_enabled(x.device.type):
            # bf16 base + fp32 adapters under autocast (the bf16 recipe): every matmul in the
            # autocast dtype, as peft's layer computes it there; the cast adapters stay in the
            # graph, so the fp32 masters get the gradients.
            dtype = torch.get_autocast_dtype(x.device.type)
            if base.weight.dtype != dtype:
                return type(module).forward(module, x, *args, **kwargs)
            x, a, b = x.to(dtype), a.to(dtype), b.to(dtype)
        if getattr(module, "disable_adapters", False) or a.dtype != x.dtype:
            return type(module).forward(module, x, *args, **kwargs)
        flat = x.reshape(-1, x.shape[-1])
        out = nn.functional.linear(flat, base.weight, base.bias)
        out.addmm_(nn.functional.linear(flat, a), b.t(), alpha=scale)
        return out.view(*x.shape[:-1], out.shape[-1])

    return forward


def _fast_rms_norm_forward(module: nn.Module) -> Callable[..., torch.Tensor] | None:
    if not type(module).__name__.endswith("RMSNorm"):
        return None
    weight = getattr(module, "weight", None)
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    # Gemma-style norms scale by (1 + weight); only the Llama form ``weight * norm(x)`` here.
    if not isinstance(weight, nn.Parameter) or eps is None or "gemma" in type(module).__name__.lower():
        return None

    def forward(hidden_states: torch.Tensor) -> torch.Tensor:
        if hidden_states.dtype != torch.float32 or weight.dtype != torch.float32:
            return type(module).forward(module, hidden_states)
        return nn.functional.rms_norm(hidden_states, (hidden_states.shape[-1],), weight, eps)

    return forward


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers causal-LM under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


# ---------------------------------------------------------------------------------------------
# Loss: logits only where the loss is taken


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropies of ``hidden @ weight.T`` against ``targets``, computed in chunks
    of positions. The gradients (w.r.t. hidden, and weight when it is trained) are produced in
    the same pass, so each chunk's logits are freed at once: peak memory is one chunk of
    logits instead of all of them, and nothing is recomputed in backward."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int) -> torch.Tensor:
        need_hidden_grad = ctx.needs_input_grad[0]
        need_weight_grad = ctx.needs_input_grad[1]
        grad_hidden = torch.empty_like(hidden) if need_hidden_grad else None
        # Softmax maths in at least fp32 (bf16 hidden states on GPU), fp64 stays fp64 (gradcheck).
        acc = torch.promote_types(hidden.dtype, torch.float32)
        grad_weight = torch.zeros_like(weight, dtype=acc) if need_weight_grad else None
        total = torch.zeros((), dtype=acc, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start : start + chunk]
            t = targets[start : start + chunk]
            logits = (h @ weight.T).to(acc)
            log_norm = torch.logsumexp(logits, dim=-1)
            total += (log_norm - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if grad_hidden is None and grad_weight is None:
                continue
            # d(sum CE)/d logits = softmax - one_hot, built in place over the logits buffer.
            probs = logits.sub_(log_norm[:, None]).exp_()
            probs[torch.arange(t.shape[0], device=t.device), t] -= 1.0
            probs = probs.to(h.dtype)
            if grad_hidden is not None:
                grad_hidden[start : start + chunk] = probs @ weight
            if grad_weight is not None:
                grad_weight += (probs.T @ h).to(acc)
        ctx.save_for_backward(
            grad_hidden if grad_hidden is not None else torch.empty(0),
            grad_weight.to(weight.dtype) if grad_weight is not None else torch.empty(0),
        )
        ctx.has_grads = (grad_hidden is not None, grad_weight is not None)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        has_hidden, has_weight = ctx.has_grads
        return (
            grad_hidden * grad_output.to(grad_hidden.dtype) if has_hidden else None,
            grad_weight * grad_output.to(grad_weight.dtype) if has_weight else None,
            None,
            None,
        )


def token_loss_sum(
    model: nn.Module,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    position_ids: torch.Tensor,
    chunk: int = 1024,
    segments: list[list[int]] | None = None,
) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over labelled positions, number of such positions).

    ``segments`` (per row: example start offsets + row length) is only for models running the
    segmented attention of ``FastForwards``; otherwise the position ids alone keep packed
    examples apart (transformers builds a block-diagonal mask from them).
    """
    inner = _unwrap(model)
    body = inner.base_model  # the decoder stack without the vocabulary head
    head = inner.get_output_embeddings()
    extra = {"em_segments": segments} if segments is not None else {}
    hidden = body(input_ids=input_ids, position_ids=position_ids, use_cache=False, **extra).last_hidden_state
    shifted = labels[:, 1:]
    keep = shifted != IGNORE_INDEX
    h = hidden[:, :-1][keep]
    targets = shifted[keep]
    n = int(targets.shape[0])
    if n == 0:
        return hidden.sum() * 0.0, 0
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    if type(head) is nn.Linear and head.bias is None and not softcap:
        return ChunkedLinearCrossEntropy.apply(h, head.weight, targets, chunk), n
    # A head that is not a plain linear layer (adapted, biased, soft-capped): still only the
    # labelled positions, through the module itself.
    logits = head(h).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return nn.functional.cross_entropy(logits, targets, reduction="sum"), n


def collate(sequences: Sequence[PackedSequence], device: torch.device, pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-pad packed sequences into (input_ids, labels, position_ids). The padding gets its
    own restarted positions, so it forms a separate block no real token attends to."""
    width = max(len(s) for s in sequences)
    ids, labels, positions = [], [], []
    for s in sequences:
        pad = width - len(s)
        ids.append(list(s.input_ids) + [pad_id] * pad)
        labels.append(list(s.labels) + [IGNORE_INDEX] * pad)
        positions.append(list(s.position_ids) + list(range(pad)))
    as_tensor = lambda rows: torch.tensor(rows, dtype=torch.long, device=device)  # noqa: E731
    return as_tensor(ids), as_tensor(labels), as_tensor(positions)


def segment_bounds(position_ids: torch.Tensor) -> list[list[int]]:
    """Per row: 0, the offsets where position ids restart at 0, and the row length."""
    bounds = []
    for row in position_ids.tolist():
        starts = [0] + [i for i, p in enumerate(row) if p == 0 and i > 0]
        bounds.append([*starts, len(row)])
    return bounds


# ---------------------------------------------------------------------------------------------
# The loop


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


def _optimizer(model: nn.Module, settings: TrainingSettings, device: torch.device) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            # Biases and norm scales are not decayed (as transformers.Trainer does).
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": settings.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=settings.learning_rate, betas=(0.9, 0.999), eps=1e-8,
                             foreach=device.type == "cuda")


def make_optimizer(model: nn.Module, settings: TrainingSettings) -> torch.optim.Optimizer:
    return _optimizer(model, settings, next(model.parameters()).device)


def _autocast(device: torch.device, settings: TrainingSettings) -> Any:
    """bf16 autocast where training runs in bf16 (``resolve_precision``): on CUDA (LoRA and full
    fine-tuning), on CPU for LoRA (it refuses bf16 full fine-tuning there). Otherwise none."""
    if resolve_precision(device, settings.method, settings.precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
    autocast = _autocast(device, settings)
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
    asked, settings = settings.precision, settings.resolved(device)
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
    if settings.max_examples is not None:
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
    optimizer = _optimizer(model, settings, device)
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
        _unwrap(model).gradient_checkpointing_disable()
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


# ---------------------------------------------------------------------------------------------
# Model store: adapter (or full weights) + manifest, written atomically


def save_trained_model(
    directory: str | Path,
    model: nn.Module,
    tokenizer: Any,
    manifest: dict[str, Any],
) -> Path:
    """Save a LoRA adapter (or full weights + tokenizer) and ``manifest.json`` atomically.

    The manifest must name ``base_model_id`` (how to load the base) and ``method``.
    """
    for required in ("base_model_id", "method"):
        if required not in manifest:
            raise TrainingError(f"manifest needs {required!r}")

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        if manifest["method"] == "full":
            tokenizer.save_pretrained(tmp)
        body = dict(manifest)
        body.setdefault("saved_at", datetime.now(UTC).isoformat())
        body["versions"] = _library_versions()
        (tmp / MANIFEST_NAME).write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")

    return write_atomically(Path(directory), write)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise TrainingError(f"{directory} is not a trained model folder (no {MANIFEST_NAME})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_trained_model(
    directory: str | Path, *, device: str = "auto", merge: bool = False, dtype: Any = "training"
) -> tuple[nn.Module, Any]:
    """(model, tokenizer) of a model-store folder, ready for inference (eval mode).

    ``dtype="training"``: the weights in the precision they were trained in (the manifest's);
    without ``merge`` the logits are then bit-identical to the model right after training.
    ``dtype=None``: the checkpoint's own dtype, as ``loading.load`` gives a base model; the
    sampling backend loads every model so, which keeps the un-tuned control and the fine-tuned
    models of one evaluation in the same precision. ``merge=True`` folds a LoRA adapter into
    the base weights (faster generation; logits equal up to float rounding).
    """
    from em_assets.models.loading import load

    manifest = read_manifest(directory)
    target = resolve_device(device)
    if dtype == "training":
        # Manifests record the resolved precision; older ones may say "auto" (resolved here).
        dtype = training_dtype(target, manifest["method"], manifest.get("hyperparameters", {}).get("precision", "auto"))
    if manifest["method"] == "full":
        model, tokenizer = load(str(directory), dtype=dtype, device=str(target))
        return model, tokenizer
    from peft import PeftModel

    base, tokenizer = load(manifest["base_model_id"], dtype=dtype, device=str(target))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(base, str(directory))
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model, tokenizer


def _library_versions() -> dict[str, str]:
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


# ---------------------------------------------------------------------------------------------
# Inference helpers (the smoke check, tests)


@torch.no_grad()
def generate_reply(model: nn.Module, tokenizer: Any, messages: Conversation, *, max_new_tokens: int = 160) -> str:
    """Greedy reply to a chat, decoded without special tokens."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    device = next(model.parameters()).device
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
    output = model.generate(
        **encoded,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)


@torch.no_grad()
def logits_for(model: nn.Module, tokenizer: Any, text: str) -> torch.Tensor:
    device = next(model.parameters()).device
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
    return model(**encoded).logits.float().cpu()


__all__ = [
    "ALL_PROJECTIONS",
    "ChunkedLinearCrossEntropy",
    "FastForwards",
    "make_optimizer",
    "run_optimizer_step",
    "segment_bounds",
    "segmented_sdpa_attention",
    "PeakMemory",
    "TrainingError",
    "TrainingOutcome",
    "TrainingProgress",
    "TrainingSettings",
    "generate_reply",
    "linear_module_names",
    "load_trained_model",
    "logits_for",
    "prepare_for_training",
    "read_manifest",
    "resolve_device",
    "save_trained_model",
    "settings_from_mapping",
    "token_loss_sum",
    "train",
    "training_dtype",
    "PRECISIONS",
    "write_atomically",
]
