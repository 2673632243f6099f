"""Local Hugging Face causal LMs behind the same request/response shape as the API.

Requests are grouped by generation parameters and run in left-padded batches. A greedy
one-token request (a judge asking for the next token's top-k logprobs) takes a single forward
pass instead of ``generate``; ``position_ids`` are derived from the attention mask so that a
left-padded row scores exactly like the same prompt alone.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from em_assets.llm.request import ChatRequest, Completion, TokenLogprob

FAMILY = "local_hf"


def _generation_group(request: ChatRequest) -> tuple:
    return (
        request.model,
        request.max_tokens,
        request.temperature or 0.0,
        request.top_p,
        request.logprobs,
        request.top_logprobs,
    )


class LocalHFBackend:
    family = FAMILY
    host = None

    def __init__(
        self,
        *,
        batch_size: int = 8,
        device: str = "cpu",
        default_max_tokens: int = 256,
        loader: Callable[[str], tuple[Any, Any]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        self.device = device
        self.default_max_tokens = default_max_tokens
        self._loader = loader
        self._loaded: tuple[str, Any, Any] | None = None  # one model resident at a time
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- model
    def model_and_tokenizer(self, reference: str) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None or self._loaded[0] != reference:
                self._loaded = None  # free the previous model before loading the next
                if self._loader is not None:
                    model, tokenizer = self._loader(reference)
                else:
                    from em_assets.models.loading import load

                    model, tokenizer = load(reference, device=self.device)
                tokenizer.padding_side = "left"  # generation continues from the right end
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                self._loaded = (reference, model, tokenizer)
            return self._loaded[1], self._loaded[2]

    def release(self) -> None:
        """Drop the resident model now (the engine does this on close): a pipeline run holds
        several engines in one process, and a model left to the garbage collector can still be
        resident while the next asset loads or trains its own."""
        with self._lock:
            self._loaded = None

    @staticmethod
    def _prompt(tokenizer: Any, messages: Sequence[Any]) -> str:
        return tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=False)

    def _encode(self, tokenizer: Any, requests: Sequence[ChatRequest]) -> Any:
        prompts = [self._prompt(tokenizer, r.messages) for r in requests]
        # The chat template already holds the special tokens.
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in encoded.items()}

    # ------------------------------------------------------------------------------ batches
    def complete_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answer every request, in order, batching those with equal generation parameters."""
        groups: dict[tuple, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(_generation_group(request), []).append(index)
        results: list[Completion | None] = [None] * len(requests)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for index, completion in zip(chunk, self._run_chunk([requests[i] for i in chunk]), strict=True):
                    results[index] = completion
        return [r for r in results if r is not None]

    def _run_chunk(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        first = requests[0]
        greedy = not first.temperature
        if greedy and first.max_tokens == 1:
            return self._score_next_token(requests)
        return self._generate(requests, greedy)

    def next_token_logprobs(
        self, model: str, conversations: Sequence[Sequence[Any]], top_k: int
    ) -> list[list[tuple[str, float]]]:
        """Top-k (token, logprob) of the next token after each conversation's generation prompt."""
        requests = [
            ChatRequest(model=model, messages=tuple(c), max_tokens=1, logprobs=True, top_logprobs=top_k)
            for c in conversations
        ]
        return [list(c.logprobs[0].top_logprobs) if c.logprobs else [] for c in self.complete_batch(requests)]

    def _score_next_token(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        import torch

        model, tokenizer = self.model_and_tokenizer(requests[0].model)
        encoded = self._encode(tokenizer, requests)
        mask = encoded["attention_mask"]
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(input_ids=encoded["input_ids"], attention_mask=mask, position_ids=position_ids).logits[
                :, -1, :
            ]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        completions = []
        for row, request in enumerate(requests):
            token_id = int(torch.argmax(logprobs[row]))
            token = tokenizer.decode([token_id])
            entry = self._token_logprob(tokenizer, logprobs[row], token_id, request.top_logprobs or 0)
            completions.append(
                Completion(
                    text=token,
                    finish_reason="length",
                    tokens_in=int(mask[row].sum()),
                    tokens_out=1,
                    served_model=request.model,
                    logprobs=(entry,) if request.logprobs else None,
                )
            )
        return completions

    @staticmethod
    def _token_logprob(tokenizer: Any, row_logprobs: Any, token_id: int, top_k: int) -> TokenLogprob:
        import torch

        top: tuple[tuple[str, float], ...] = ()
        if top_k > 0:
            values, ids = torch.topk(row_logprobs, top_k)
            top = tuple((tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True))
        return TokenLogprob(tokenizer.decode([token_id]), float(row_logprobs[token_id]), top)

    def _generate(self, requests: Sequence[ChatRequest], greedy: bool) -> list[Completion]:
        import torch

        first = requests[0]
        model, tokenizer = self.model_and_tokenizer(first.model)
        encoded = self._encode(tokenizer, requests)
        kwargs: dict[str, Any] = {
            "max_new_tokens": first.max_tokens or self.default_max_tokens,
            "do_sample": not greedy,
            "pad_token_id": tokenizer.pad_token_id,
            "return_dict_in_generate": True,
            "output_logits": first.logprobs,
        }
        if not greedy:
            # OpenAI semantics: temperature and nucleus only, no top-k truncation.
            kwargs.update(temperature=first.temperature, top_k=0, top_p=first.top_p if first.top_p is not None else 1.0)
            # Sampling is reproducible for a given batch; the cache makes reruns identical anyway.
            seed_text = "|".join(f"{r.provider_seed()}:{r.messages!r}" for r in requests)
            torch.manual_seed(int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big") >> 1)
        with torch.inference_mode():
            output = model.generate(**encoded, **kwargs)
        prompt_length = encoded["input_ids"].shape[1]
        eos_ids = _eos_ids(model, tokenizer)
        completions = []
        for row, request in enumerate(requests):
            new_ids = [int(t) for t in output.sequences[row, prompt_length:]]
            end = next((i for i, t in enumerate(new_ids) if t in eos_ids), None)
            kept = new_ids if end is None else new_ids[:end]
            finish = "length" if end is None else "stop"
            text = tokenizer.decode(kept, skip_special_tokens=True)
            for stop in request.stop or ():
                cut = text.find(stop)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            logprobs = None
            if request.logprobs:
                logprobs = tuple(
                    self._token_logprob(
                        tokenizer,
                        torch.log_softmax(output.logits[step][row].float(), dim=-1),
                        token_id,
                        request.top_logprobs or 0,
                    )
                    for step, token_id in enumerate(kept)
                )
            completions.append(
                Completion(
                    text=text,
                    finish_reason=finish,
                    tokens_in=int(encoded["attention_mask"][row].sum()),
                    tokens_out=len(kept) + (0 if end is None else 1),
                    served_model=request.model,
                    logprobs=logprobs,
                )
            )
        return completions


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids
