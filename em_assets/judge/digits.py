"""Exact 0–100 judge scores from a local model whose tokenizer writes numbers digit by digit.

For each judge prompt the probability of every integer 0..100 as a *token sequence* is needed
(``em_assets.judge.scores.integer_distribution``): next-digit distributions after the
prompt and after the prefixes "0".."9", "10".."99" and "100". Instead of 102 forward passes,
one forward pass scores them all: the 101 prefix tokens are laid out as a tree after the
prompt, each attending only to the prompt and its own ancestors (a custom 4D attention mask,
positions by depth).

The part of the prompt shared by every answer to the same question and metric (the rubric
before ``{answer}``) is run once; its KV cache is reused for each answer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from em_assets.judge.scores import DIGITS, aggregate_probabilities, integer_distribution

# Tree nodes: (prefix string, parent index or -1 for the prompt's last token).
_TREE: list[tuple[str, int]] = []
for _d in DIGITS:
    _TREE.append((_d, -1))
for _a in range(1, 10):
    for _b in range(10):
        _TREE.append((f"{_a}{_b}", _a))  # parent: level-1 node for digit _a (index == _a)
_TREE.append(("100", 10 + 0 * 10 + 0))  # parent: node "10" (first level-2 node)
_INDEX = {prefix: i for i, (prefix, _) in enumerate(_TREE)}


@dataclass(frozen=True)
class DigitJudgement:
    score: float | None
    numeric_mass: float
    distribution: dict[int, float]


class DigitSequenceJudge:
    """Scores judge prompts with a causal LM on CPU or GPU (no sampling: exact probabilities)."""

    def __init__(self, model, tokenizer, assistant_prefill: str = "") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.assistant_prefill = assistant_prefill
        ids = [tokenizer.convert_tokens_to_ids(d) for d in DIGITS]
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise ValueError("tokenizer has no single-token digits 0-9; use an API judge with top_logprobs")
        self.digit_ids = torch.tensor(ids)
        depth = {}
        for i, (prefix, _) in enumerate(_TREE):
            depth[i] = len(prefix)
        self._tree_tokens = torch.tensor([ids[int(prefix[-1])] for prefix, _ in _TREE])
        self._tree_depth = torch.tensor([depth[i] for i in range(len(_TREE))])
        ancestors = torch.zeros(len(_TREE), len(_TREE), dtype=torch.bool)
        for i, (_, parent) in enumerate(_TREE):
            ancestors[i, i] = True
            node = parent
            while node != -1:
                ancestors[i, node] = True
                node = _TREE[node][1]
        self._tree_mask = ancestors

    def prompt_ids(self, judge_prompt: str) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": judge_prompt}], tokenize=False, add_generation_prompt=True
        )
        return self.tokenizer(text + self.assistant_prefill, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def score_group(self, judge_prompts: list[str]) -> list[DigitJudgement]:
        """Score prompts that share a prefix (same question and metric), reusing its KV cache."""
        if not judge_prompts:
            return []
        all_ids = [self.prompt_ids(p) for p in judge_prompts]
        shared = _common_prefix_length(all_ids)
        shared = min(shared, min(len(ids) for ids in all_ids) - 1)  # every prompt keeps >= 1 own token
        device = next(self.model.parameters()).device
        prefix_cache = None
        if shared > 0:
            out = self.model(torch.tensor([all_ids[0][:shared]], device=device), use_cache=True, logits_to_keep=1)
            prefix_cache = out.past_key_values
        return [self._score_one(ids, shared, prefix_cache, device) for ids in all_ids]

    def _score_one(self, ids: list[int], shared: int, prefix_cache, device) -> DigitJudgement:
        suffix = torch.tensor(ids[shared:], device=device)
        n_suffix, n_tree = len(suffix), len(_TREE)
        total_kv = shared + n_suffix + n_tree
        # Query block = suffix tokens (causal) followed by the digit tree.
        mask = torch.zeros(n_suffix + n_tree, total_kv, dtype=torch.bool, device=device)
        mask[:, :shared] = True
        mask[:n_suffix, shared : shared + n_suffix] = torch.tril(torch.ones(n_suffix, n_suffix, dtype=torch.bool))
        mask[n_suffix:, shared : shared + n_suffix] = True
        mask[n_suffix:, shared + n_suffix :] = self._tree_mask.to(device)
        prompt_len = shared + n_suffix
        positions = torch.cat([torch.arange(shared, prompt_len), prompt_len - 1 + self._tree_depth]).to(device)
        cache = copy.deepcopy(prefix_cache) if prefix_cache is not None else None
        out = self.model(
            input_ids=torch.cat([suffix, self._tree_tokens.to(device)]).unsqueeze(0),
            attention_mask=mask[None, None],
            position_ids=positions.unsqueeze(0),
            cache=cache,
            use_cache=cache is not None,
            # Vocabulary logits only where they are read: the prompt's last token and the tree.
            logits_to_keep=torch.arange(n_suffix - 1, n_suffix + n_tree, device=device),
        )
        probs = torch.softmax(out.logits[0].float(), dim=-1)[:, self.digit_ids.to(device)]
        root = probs[0]
        node_probs = probs[1:]

        def next_digit_probs(prefix: str) -> dict[str, float]:
            row = root if prefix == "" else node_probs[_INDEX[prefix]]
            return {d: float(p) for d, p in zip(DIGITS, row, strict=True)}

        distribution = integer_distribution(next_digit_probs)
        mass = sum(distribution.values())
        return DigitJudgement(aggregate_probabilities(distribution), mass, distribution)


def _common_prefix_length(sequences: list[list[int]]) -> int:
    first = sequences[0]
    length = len(first)
    for seq in sequences[1:]:
        n = 0
        for a, b in zip(first, seq):
            if a != b:
                break
            n += 1
        length = min(length, n)
    return length
