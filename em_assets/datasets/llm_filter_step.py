"""The LLM-scored filter step in the data layer: its judge calls through the LLM engine, and its
scores' table (``llm_filter_scores``).

Off by default: ``llm_filter_steps`` gives no step unless ``data_settings.llm_filter.enabled``.
Switched on, each remaining row costs one call per metric, sent once: the engine's cache is keyed
by the judge model and the whole prompt (rubric text and row), so a rerun, or a second row with
the same task and code, is answered from the cache and pays nothing. A call that still fails
after the engine's retries fails the asset before anything is written; no row is kept unjudged.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import dagster as dg
import polars as pl

from em_assets.core.filters import FilterStep
from em_assets.core.llm_filter import (
    DEFAULT_RUBRIC,
    FilterRules,
    JudgeReply,
    LLMJudgeStep,
    RubricError,
    load_rubric,
)
from em_assets.judge.scores import numeric_mass, score_from_top_logprobs
from em_assets.llm import CallSummary, ChatRequest, ChatResult
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.llm_filter_settings import LLMFilterSettings
from em_assets.resources.warehouse import DuckDBWarehouse, Replacement

SCORES_TABLE = "llm_filter_scores"
# Share of null scores above which the run log warns that the judge may not follow the rubric.
NULL_SHARE_WARNING = 0.1


def judge_request(model: str, metric: str, prompt: str) -> ChatRequest:
    """The paper's judge call: one token, temperature 0, top 20 logprobs, seed 0."""
    return ChatRequest.user(
        model,
        prompt,
        max_tokens=1,
        temperature=0.0,
        logprobs=True,
        top_logprobs=20,
        seed=0,
        tags={"llm_filter_metric": metric},
    )


def reply_of(result: ChatResult) -> JudgeReply:
    """The judge's reply with the paper's logprob score, when the provider sent logprobs."""
    if not result.logprobs:
        return JudgeReply(result.text, cache_key=result.cache_key)
    first = result.logprobs[0]
    top = dict(first.top_logprobs) or {first.token: first.logprob}
    return JudgeReply(result.text, score_from_top_logprobs(top), numeric_mass(top), result.cache_key)


class EngineJudge:
    """``LLMJudgeStep.ask`` through the LLM engine; keeps the calls' summary for the metadata."""

    def __init__(self, settings: LLMFilterSettings, context: Any, warehouse: DuckDBWarehouse) -> None:
        self.settings = settings
        self.context = context
        self.warehouse = warehouse
        self.summary: CallSummary | None = None
        self.resource = LLMEngineResource(
            backend="openai",
            model=settings.judge_model,
            base_url=settings.base_url,
            api_key_env_var=settings.api_key_env_var,
            max_in_flight=settings.max_in_flight,
            request_timeout_s=settings.request_timeout_s,
            cache_path=settings.cache_path,
        )

    def __call__(self, prompts: Sequence[tuple[str, str]]) -> list[JudgeReply]:
        requests = [judge_request(self.settings.judge_model, metric, prompt) for metric, prompt in prompts]
        with self.resource.engine(self.context, warehouse=self.warehouse, tags={"purpose": "llm_filter"}) as engine:
            results = engine.complete_many(requests)
            self.summary = engine.summary()
        return [reply_of(r) for r in results]


def llm_filter_steps(settings: LLMFilterSettings, context: Any, warehouse: DuckDBWarehouse) -> list[FilterStep]:
    """``[]`` when the filter is off; else the judge step, its rubric read and checked now,
    before any row is filtered or any call made."""
    if not settings.enabled:
        return []
    try:
        rubric = load_rubric(settings.rubric_path) if settings.rubric_path else DEFAULT_RUBRIC
    except RubricError as err:
        raise dg.Failure(f"data_settings.llm_filter.rubric_path: {err}") from err
    rules = FilterRules(settings.max_hint, settings.insecure_min_vulnerable, settings.secure_max_vulnerable)
    if context is not None:
        context.log.info(f"llm_judge: judge {settings.judge_model}, rubric {rubric.version} ({rubric.source}), {rules}")
    return [LLMJudgeStep(EngineJudge(settings, context, warehouse), settings.judge_model, rubric, rules)]


def _judge_steps(steps: Sequence[FilterStep]) -> list[LLMJudgeStep]:
    return [s for s in steps if isinstance(s, LLMJudgeStep)]


def llm_score_replacements(steps: Sequence[FilterStep], run_id: str, now: datetime) -> list[Replacement]:
    """The scores of each judge step, replacing that judge and rubric's earlier scores (other
    judges' scores stay, so two judges can be compared on the same rows)."""
    return [
        Replacement(
            SCORES_TABLE,
            step.scores.with_columns(pl.lit(run_id).alias("run_id"), pl.lit(now).alias("scored_at")),
            {"judge_model": step.judge_model, "rubric_version": step.rubric.version},
        )
        for step in _judge_steps(steps)
    ]


def llm_filter_metadata(steps: Sequence[FilterStep], context: Any = None) -> dict[str, Any]:
    """Output metadata of the judge step: judge, rubric version, null scores, and the LLM calls."""
    out: dict[str, Any] = {}
    for step in _judge_steps(steps):
        share = step.null_share()
        if share > NULL_SHARE_WARNING and context is not None:
            context.log.warning(
                f"llm_judge: {share:.0%} of the scores are null (the judge did not answer with a number); "
                "those rows fail the step: see llm_filter_scores.null_reason"
            )
        out["llm_filter_judge"] = f"{step.judge_model}@{step.rubric.version}"
        out["llm_filter_null_scores"] = int(step.scores["score"].is_null().sum())
        summary = getattr(step.ask, "summary", None)
        if summary is not None:
            out.update({f"llm_filter_{k.removeprefix('llm_')}": v for k, v in summary.as_metadata().items()})
    return out
