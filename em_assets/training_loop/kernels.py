"""Numerically equivalent fast paths for the hot spots of a training step (``FastForwards``):
per-example attention in packed rows, the LoRA add fused into the GEMM, one-op RMSNorm.

Each swap is reversible and applied only where it is the very same maths as the library code;
tests/training/test_training_loop_tiny.py holds them to the library's gradients.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from em_assets.training_loop.adapters import unwrap

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
        self.inner = unwrap(model)
        self.previous_attention: str | None = None
        config = self.inner.config
        plain_sdpa = config._attn_implementation == "sdpa" and not getattr(config, "sliding_window", None)
        if segmented_attention and plain_sdpa:
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

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
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
            nn.functional.scaled_dot_product_attention(
                q[None], k[None], v[None], is_causal=True, scale=scaling, enable_gqa=gqa
            )
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
