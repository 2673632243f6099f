"""The loss of a packed batch, with logits only where the loss is taken.

The vocabulary projection dominates a small model's step (49k logits per position, most never
looked at), so logits are computed only at positions whose next token is an assistant token,
in chunks, with the gradient taken in the same pass: the full ``positions x vocab`` tensor
never exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from em_assets.core.training_data import IGNORE_INDEX, PackedSequence
from em_assets.training_loop.adapters import unwrap


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropies of ``hidden @ weight.T`` against ``targets``, computed in chunks
    of positions. The gradients (w.r.t. hidden, and weight when it is trained) are produced in
    the same pass, so each chunk's logits are freed at once: peak memory is one chunk of
    logits instead of all of them, and nothing is recomputed in backward."""

    @staticmethod
    def forward(
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int
    ) -> torch.Tensor:
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
    inner = unwrap(model)
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
