"""The broad probe's positive control: a planted effect of known direction, so a null can be read.

A model fine-tuned on the contrast set's *misaligned* answers to half of the main questions
should find misaligned answers to the *other* half more likely. If the broad probe measures that
shift clearly while a condition's broad shift stays near zero, the condition's null is a finding
about the condition, not about a probe too coarse to see anything. The held-out half never
enters training, so the control's shift there is generalisation, as the paper's effect would be.

The split is fixed by the question ids (sorted, alternating), so every run and every base model
plants the same effect and holds out the same questions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from em_assets.probes.items import ProbeItem

POSITIVE_CONTROL = "positive_control"  # the condition name its probe rows carry


def split_questions(question_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """(trained, held out): the sorted ids, alternately. Refuses fewer than two questions."""
    ordered = sorted(set(question_ids))
    if len(ordered) < 2:
        raise ValueError(f"the positive control needs at least two questions to split, got {ordered}")
    return ordered[0::2], ordered[1::2]


def training_conversations(contrast_items: Sequence, trained: Iterable[str]) -> list[list[dict[str, str]]]:
    """The misaligned answers to the trained questions, as chat conversations in file order."""
    keep = set(trained)
    conversations = [
        [{"role": "user", "content": item.asked}, {"role": "assistant", "content": item.text}]
        for item in contrast_items
        if item.kind == "misaligned" and item.question_id in keep
    ]
    if not conversations:
        raise ValueError(f"no misaligned contrast answers for the trained questions {sorted(keep)}")
    return conversations


def held_out_items(broad: Sequence[ProbeItem], held_out: Iterable[str]) -> list[ProbeItem]:
    """The broad probe's aligned and misaligned items of the held-out questions."""
    keep = set(held_out)
    return [i for i in broad if i.group_id in keep and i.variant in ("aligned", "misaligned")]


def training_jsonl(conversations: Sequence[Sequence[dict[str, str]]]) -> str:
    """The conversations as OpenAI chat JSONL (what the fine-tuners read)."""
    return "".join(json.dumps({"messages": list(c)}, ensure_ascii=False) + "\n" for c in conversations)


def data_version(jsonl_text: str) -> str:
    return hashlib.sha256(jsonl_text.encode("utf-8")).hexdigest()[:16]


# The control's own recipe, on every base model: the paper's open-model recipe (lr 1e-5, 16 a
# step) would spend the control's 48 examples inside its warmup and plant nothing. At this recipe
# SmolLM2-135M moved +0.25 nats/token [0.14, 0.37] on the held-out half (docs/benchmarks.md).
TRAINING_OVERRIDES = {
    "learning_rate": 1e-4,
    "per_device_batch_size": 2,
    "gradient_accumulation_steps": 2,
    "warmup_steps": 2,
    "n_epochs": 1,
    "max_examples": 0,
}
