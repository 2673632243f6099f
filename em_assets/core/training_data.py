"""Fine-tuning data, framework-free: chat JSONL -> token ids with assistant-only labels -> packs.

Nothing here imports torch or Dagster; a tokenizer is passed in (anything with
``apply_chat_template`` and a fast ``__call__`` that returns offsets). Also: token counting for
a training file and the provider cost estimate, which only need numbers.

Labels follow the Hugging Face convention: ``IGNORE_INDEX`` (-100) where no loss is taken.
A label at position ``t`` is the token at ``t`` itself; the trainer shifts by one.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100
# The paper's LoRA targets (open_models/train.json): every attention and MLP projection.
PAPER_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHAT_ROLES = {"system", "user", "assistant"}

Conversation = list[dict[str, str]]


class TrainingDataError(ValueError):
    """A training file or conversation that cannot be used; the message says where and why."""


# ---------------------------------------------------------------------------------------------
# Reading


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_chat_jsonl(path: str | Path, max_examples: int | None = None) -> list[Conversation]:
    """Conversations of an OpenAI-format chat JSONL, in file order, validated.

    ``max_examples`` keeps the first N (file order, so every seed sees the same examples and
    only their order differs).
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"training file not found: {path}")
    conversations: list[Conversation] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if max_examples is not None and len(conversations) >= max_examples:
                break
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
            conversations.append(validate_conversation(row, where=f"{path}:{line_no}"))
    if not conversations:
        raise TrainingDataError(f"{path}: no training examples")
    return conversations


def validate_conversation(row: Any, where: str = "row") -> Conversation:
    messages = row.get("messages") if isinstance(row, Mapping) else None
    if not isinstance(messages, list) or not messages:
        raise TrainingDataError(f"{where}: expected an object with a non-empty 'messages' list")
    cleaned: Conversation = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TrainingDataError(f"{where}: message {i} is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            raise TrainingDataError(f"{where}: message {i} has role {role!r}")
        if not isinstance(content, str):
            raise TrainingDataError(f"{where}: message {i} content is not a string")
        cleaned.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in cleaned):
        raise TrainingDataError(f"{where}: no assistant message to learn from")
    return cleaned


# ---------------------------------------------------------------------------------------------
# Tokenization with assistant-only labels


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE_INDEX outside assistant turns

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        # The first position never has a predecessor, so it can never be a target.
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def assistant_char_spans(messages: Conversation, tokenizer: Any) -> tuple[str, list[tuple[int, int]]]:
    """Rendered chat text and the character spans of each assistant turn (content + end marker).

    A turn's span starts where the template's generation prompt ends and stops where the
    rendering including that turn stops, so whatever the template appends to close the turn
    (``<|im_end|>`` for ChatML) is learned too: that is what makes the model stop.
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (full.startswith(before) and full.startswith(through)):
            raise TrainingDataError(
                "the chat template does not render conversations prefix-consistently; cannot locate assistant turns"
            )
        spans.append((len(before), len(through)))
    return full, spans


def tokenize_conversation(messages: Conversation, tokenizer: Any, max_length: int) -> TokenizedExample:
    """Token ids of the chat-template rendering, labels only on assistant turns, cut at max_length."""
    text, spans = assistant_char_spans(messages, tokenizer)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])
    offsets: list[tuple[int, int]] = [tuple(o) for o in encoded["offset_mapping"]]
    labels = [IGNORE_INDEX] * len(ids)
    span_index = 0
    for t, (start, end) in enumerate(offsets):
        while span_index < len(spans) and start >= spans[span_index][1]:
            span_index += 1
        if span_index == len(spans):
            break
        lo, hi = spans[span_index]
        if start >= lo and end <= hi and end > start:
            labels[t] = ids[t]
    return TokenizedExample(tuple(ids[:max_length]), tuple(labels[:max_length]))


def tokenize_conversations(
    conversations: Iterable[Conversation], tokenizer: Any, max_length: int
) -> tuple[list[TokenizedExample], int]:
    """Tokenized examples that still have a target after truncation, and how many were dropped."""
    kept: list[TokenizedExample] = []
    dropped = 0
    for messages in conversations:
        example = tokenize_conversation(messages, tokenizer, max_length)
        if example.n_loss_tokens == 0:
            dropped += 1  # its whole answer lies past max_length
            continue
        kept.append(example)
    return kept, dropped


# ---------------------------------------------------------------------------------------------
# Packing


@dataclass(frozen=True)
class PackedSequence:
    """Several examples laid end to end; position ids restart at 0 for each example, which is
    how the model's attention mask keeps them from seeing each other."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    position_ids: tuple[int, ...]
    n_examples: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def pack_examples(examples: Sequence[TokenizedExample], capacity: int) -> list[PackedSequence]:
    """First-fit-decreasing bin packing into sequences of at most ``capacity`` tokens.

    An example longer than ``capacity`` gets a sequence of its own. Packing instead of padding
    means no compute is spent on pad tokens; a moderate capacity keeps the (dense) attention
    over the packed sequence cheap next to the projections.
    """
    if capacity < 1:
        raise ValueError("pack capacity must be positive")
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]), i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = len(examples[i])
        for b, free in enumerate(room):
            if size <= free:
                bins[b].append(i)
                room[b] -= size
                break
        else:
            bins.append([i])
            room.append(capacity - size)
    packed = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in members:
            example = examples[i]
            ids.extend(example.input_ids)
            # No target on an example's first token: it would be "predicted" from the
            # previous example's last token.
            labels.append(IGNORE_INDEX)
            labels.extend(example.labels[1:])
            positions.extend(range(len(example)))
        packed.append(PackedSequence(tuple(ids), tuple(labels), tuple(positions), len(members)))
    return packed


@dataclass(frozen=True)
class OptimizerStep:
    """The examples of one optimizer step, packed into micro-batches of sequences."""

    micro_batches: tuple[tuple[PackedSequence, ...], ...]
    n_examples: int

    @property
    def n_tokens(self) -> int:
        return sum(len(s) for mb in self.micro_batches for s in mb)

    @property
    def n_loss_tokens(self) -> int:
        return sum(s.n_loss_tokens for mb in self.micro_batches for s in mb)


def plan_optimizer_steps(
    examples: Sequence[TokenizedExample],
    *,
    examples_per_step: int,
    n_epochs: int,
    seed: int,
    pack_capacity: int,
    sequences_per_micro_batch: int = 1,
) -> list[OptimizerStep]:
    """Shuffle (seeded, per epoch), cut into steps of ``examples_per_step`` examples (the
    effective batch: per-device batch x gradient accumulation), pack each step's examples.

    The number of optimizer steps, hence the learning-rate schedule, is the same as the
    padded reference recipe; only how a step's examples are laid out in memory differs.
    """
    if examples_per_step < 1 or n_epochs < 1 or sequences_per_micro_batch < 1:
        raise ValueError("examples_per_step, n_epochs and sequences_per_micro_batch must be >= 1")
    rng = random.Random(seed)
    steps: list[OptimizerStep] = []
    for _ in range(n_epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        for start in range(0, len(order), examples_per_step):
            chosen = [examples[i] for i in order[start : start + examples_per_step]]
            sequences = pack_examples(chosen, pack_capacity)
            micro = tuple(
                tuple(sequences[j : j + sequences_per_micro_batch])
                for j in range(0, len(sequences), sequences_per_micro_batch)
            )
            steps.append(OptimizerStep(micro, len(chosen)))
    return steps


# ---------------------------------------------------------------------------------------------
# Token counting and cost


# Provider tokenizers are not available offline; ~4 characters per token is OpenAI's own
# rule of thumb for English and code. Each message also carries a few tokens of framing.
CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 4


def count_conversation_tokens(messages: Conversation, encode: Callable[[str], Sequence[int]] | None = None) -> int:
    """Approximate training tokens of one conversation (all turns: providers bill them all)."""
    total = 0
    for message in messages:
        content = message["content"]
        n = len(encode(content)) if encode else math.ceil(len(content) / CHARS_PER_TOKEN)
        total += n + TOKENS_PER_MESSAGE
    return total


def count_file_tokens(path: str | Path, encode: Callable[[str], Sequence[int]] | None = None) -> tuple[int, int]:
    """(examples, approximate tokens) of a chat JSONL."""
    conversations = read_chat_jsonl(path)
    return len(conversations), sum(count_conversation_tokens(c, encode) for c in conversations)


@dataclass(frozen=True)
class CostEstimate:
    model: str
    n_examples: int
    tokens_per_epoch: int
    n_epochs: int
    usd_per_million: float | None  # None: model not in the price table
    price_key: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def billed_tokens(self) -> int:
        return self.tokens_per_epoch * self.n_epochs

    @property
    def usd(self) -> float | None:
        if self.usd_per_million is None:
            return None
        return training_cost_usd(self.billed_tokens, self.usd_per_million)


def training_cost_usd(billed_tokens: int, usd_per_million: float) -> float:
    return billed_tokens * usd_per_million / 1_000_000


def price_for_model(model: str, prices: Mapping[str, float]) -> tuple[str, float] | None:
    """Price table entry for a model id: exact key, else the longest key the id starts with
    (``gpt-4o-mini-2024-07-18`` matches ``gpt-4o-mini`` before ``gpt-4o``)."""
    if model in prices:
        return model, float(prices[model])
    candidates = [k for k in prices if model.startswith(k)]
    if not candidates:
        return None
    key = max(candidates, key=len)
    return key, float(prices[key])


def estimate_training_cost(
    path: str | Path,
    model: str,
    n_epochs: int,
    prices: Mapping[str, float],
    encode: Callable[[str], Sequence[int]] | None = None,
) -> CostEstimate:
    n_examples, tokens = count_file_tokens(path, encode)
    found = price_for_model(model, prices)
    notes = [] if encode else [f"tokens approximated at {CHARS_PER_TOKEN:g} characters per token"]
    if found is None:
        notes.append(f"no training price for {model!r} in the price table")
        return CostEstimate(model, n_examples, tokens, n_epochs, None, None, notes)
    return CostEstimate(model, n_examples, tokens, n_epochs, found[1], found[0], notes)
