"""How likely a model finds a given answer: the sum of log P(token) over the assistant turn.

The turn is tokenized exactly as training sees it (``core.training_data.tokenize_conversation``:
the chat template, labels on the assistant's tokens and its end-of-turn marker), so a probe
measures the quantity fine-tuning moves. Forward passes only, batched with right padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from em_assets.core.training_data import IGNORE_INDEX, Conversation, tokenize_conversation

MAX_PROBE_TOKENS = 2048  # a probe item longer than this is an error, never silently cut


class ProbeError(ValueError):
    """A probe item that cannot be scored (names the item)."""


@dataclass(frozen=True)
class AnswerLogprob:
    logprob: float  # natural log, summed over the answer's tokens
    n_tokens: int

    @property
    def per_token(self) -> float:
        return self.logprob / self.n_tokens


def answer_logprobs(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Conversation],
    *,
    labels: Sequence[str] | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[AnswerLogprob]:
    """log P(assistant turns | the rest) for each conversation, in input order."""
    import torch

    examples = []
    for i, messages in enumerate(conversations):
        example = tokenize_conversation(messages, tokenizer, MAX_PROBE_TOKENS + 1)
        name = labels[i] if labels else f"#{i}"
        if len(example) > MAX_PROBE_TOKENS:
            raise ProbeError(f"probe item {name} is over {MAX_PROBE_TOKENS} tokens")
        if example.n_loss_tokens == 0:
            raise ProbeError(f"probe item {name} has no assistant tokens to score")
        examples.append(example)
    # Similar lengths share a batch, so little compute goes to padding.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[AnswerLogprob | None] = [None] * len(examples)
    model.eval()
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [examples[i] for i in order[start : start + batch_size]]
            width = max(len(e) for e in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            targets = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, e in enumerate(batch):
                ids[row, : len(e)] = torch.tensor(e.input_ids)
                targets[row, : len(e)] = torch.tensor(e.labels)
                mask[row, : len(e)] = 1
            # The vocabulary projection only where an answer token is predicted: prompts are
            # often longer than answers, and [batch, positions, vocabulary] logits are large.
            hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
            next_targets = targets[:, 1:]
            scored = next_targets != IGNORE_INDEX
            logits = head(hidden[scored]).float()
            token_logprobs = (
                torch.log_softmax(logits, dim=-1).gather(-1, next_targets[scored].unsqueeze(-1)).squeeze(-1)
            )
            rows = torch.arange(len(batch)).unsqueeze(1).expand_as(scored)[scored]
            sums = torch.zeros(len(batch), dtype=torch.float64).index_add_(0, rows, token_logprobs.double())
            for row, i in enumerate(order[start : start + batch_size]):
                out[i] = AnswerLogprob(float(sums[row]), int(scored[row].sum()))
            if progress:
                progress(min(start + batch_size, len(order)), len(order))
    return [o for o in out if o is not None]
