"""Greedy replies and logits of a loaded model: the smoke check's answer and the tests' probes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from em_assets.core.training_data import Conversation


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
