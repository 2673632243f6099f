"""Judge scoring, independent of Dagster: API judges through the LLM engine, local judges with
the exact digit-sequence method (``em_assets.judge.digits``)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from em_assets.core.questions import Question
from em_assets.judge.scores import numeric_mass, score_from_top_logprobs
from em_assets.llm import ChatRequest, LLMEngine
from em_assets.llm.ledger import ledger_row

EMPTY_ANSWER = "(empty answer: not judged)"


@dataclass(frozen=True)
class JudgeTask:
    response_id: str
    question: Question
    metric: str
    asked: str  # the paraphrase the model saw
    answer: str

    @property
    def prompt(self) -> str:
        return self.question.judge_prompt(self.metric, self.asked, self.answer)


@dataclass(frozen=True)
class JudgeOutput:
    response_id: str
    metric: str
    score: float | None
    numeric_mass: float | None
    judge_text: str | None
    top_tokens: str | None  # JSON
    # A local judge's work on this answer, for the cost ledger (API calls: the engine records them).
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float | None = None  # None: no local work (API judge, or an empty answer)


def _empty(task: JudgeTask) -> JudgeOutput:
    return JudgeOutput(task.response_id, task.metric, None, None, EMPTY_ANSWER, None)


def judge_with_api(
    tasks: Sequence[JudgeTask], engine: LLMEngine, model: str, word_max_tokens: int = 8
) -> list[JudgeOutput]:
    """One token, temperature 0, top 20 logprobs, seed 0 (the paper's settings) for 0-100 judges;
    a short greedy answer for word judges."""
    todo = [t for t in tasks if t.answer.strip()]
    requests = []
    for t in todo:
        if t.question.type == "free_form_judge_0_100":
            requests.append(
                ChatRequest.user(model, t.prompt, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20, seed=0)
            )
        else:
            requests.append(ChatRequest.user(model, t.prompt, max_tokens=word_max_tokens, temperature=0.0, seed=0))
    results = engine.complete_many(requests) if requests else []
    by_id: dict[tuple[str, str], JudgeOutput] = {}
    for task, result in zip(todo, results, strict=True):
        if task.question.type == "free_form_judge_0_100":
            top = result.first_token_top_logprobs()
            by_id[(task.response_id, task.metric)] = JudgeOutput(
                task.response_id,
                task.metric,
                score_from_top_logprobs(top),
                numeric_mass(top),
                result.text,
                json.dumps(top, sort_keys=True),
            )
        else:
            by_id[(task.response_id, task.metric)] = JudgeOutput(
                task.response_id, task.metric, None, None, (result.text or "").strip(), None
            )
    return [by_id.get((t.response_id, t.metric)) or _empty(t) for t in tasks]


def judge_locally(
    tasks: Sequence[JudgeTask],
    model_reference: str,
    prefill: str,
    word_max_tokens: int = 8,
    log: Callable[[str], None] | None = None,
) -> list[JudgeOutput]:
    """Exact integer probabilities on a local model. The 0-100 prompts of one metric share the
    KV cache of their common prefix (the rubric, which comes first), across questions: with one
    answer a question, as in the embedded run, a per-question group would share nothing."""
    from em_assets.judge.digits import DigitSequenceJudge
    from em_assets.models.loading import load

    model, tokenizer = load(model_reference)
    judge = DigitSequenceJudge(model, tokenizer, assistant_prefill=prefill)
    groups: dict[tuple[str, str], list[JudgeTask]] = defaultdict(list)
    for t in tasks:
        if t.answer.strip():
            numeric = t.question.type == "free_form_judge_0_100"
            groups[(t.metric, "*" if numeric else t.question.id)].append(t)
    out: dict[tuple[str, str], JudgeOutput] = {}
    done = 0
    for (metric, question_id), group in groups.items():
        if group[0].question.type == "free_form_judge_0_100":
            started = time.perf_counter()
            verdicts = judge.score_group([t.prompt for t in group])
            share = (time.perf_counter() - started) / len(group)  # one batched pass: an equal share each
            for task, verdict in zip(group, verdicts, strict=True):
                out[(task.response_id, metric)] = JudgeOutput(
                    task.response_id,
                    metric,
                    verdict.score,
                    verdict.numeric_mass,
                    None,
                    json.dumps({str(k): round(p, 6) for k, p in verdict.distribution.items() if p >= 1e-4}),
                    tokens_in=len(judge.prompt_ids(task.prompt)),
                    seconds=share,
                )
        else:
            for task in group:
                started = time.perf_counter()
                text, n_in, n_out = _greedy_text(model, tokenizer, task.prompt, prefill, word_max_tokens)
                out[(task.response_id, metric)] = JudgeOutput(
                    task.response_id,
                    metric,
                    None,
                    None,
                    text,
                    None,
                    tokens_in=n_in,
                    tokens_out=n_out,
                    seconds=time.perf_counter() - started,
                )
        done += len(group)
        if log:
            where = metric if question_id == "*" else f"{question_id}/{metric}"
            log(f"judged {done}/{sum(len(g) for g in groups.values())} ({where})")
    return [out.get((t.response_id, t.metric)) or _empty(t) for t in tasks]


def _greedy_text(model, tokenizer, prompt: str, prefill: str, max_new_tokens: int) -> tuple[str, int, int]:
    """The judge's short answer, with its prompt and answer token counts."""
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text + prefill, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    n_in = ids["input_ids"].shape[1]
    return tokenizer.decode(out[0, n_in:], skip_special_tokens=True).strip(), n_in, out.shape[1] - n_in


def local_ledger_rows(
    tasks: Sequence[JudgeTask], outputs: Sequence[JudgeOutput], model: str, prefill: str, tags: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``llm_calls`` rows for a local judge's work, one per judged (answer, metric), cost 0, so
    the ledger counts judging whichever judge runs. The cache key names the exact prompt."""
    prompts = {(t.response_id, t.metric): t.prompt for t in tasks}
    return [
        ledger_row(
            cache_key=hashlib.sha256(
                json.dumps([model, prefill, prompts[(o.response_id, o.metric)]]).encode()
            ).hexdigest(),
            endpoint_family="local_hf",
            base_url_host=None,
            model=model,
            sample_index=0,
            mode="local",
            tokens_in=o.tokens_in,
            tokens_out=o.tokens_out,
            cost_usd=0.0,
            cache_hit=False,
            latency_s=o.seconds,
            attempts=1,
            error=None,
            tags={**tags, "metric": o.metric, "response_id": o.response_id},
        )
        for o in outputs
        if o.seconds is not None
    ]
