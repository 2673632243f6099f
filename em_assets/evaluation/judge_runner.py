"""Run the configured judge on judge tasks, from an asset: locally (its work written to the
cost ledger here) or through the LLM engine (which writes the ledger itself)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

from em_assets.judge.scoring import JudgeOutput, JudgeTask, judge_locally, judge_with_api, local_ledger_rows
from em_assets.llm.ledger import CallSummary, rows_to_frame
from em_assets.resources.llm_engine import context_tags

if TYPE_CHECKING:
    from em_assets.evaluation.settings import JudgeSettings
    from em_assets.resources.llm_engine import LLMEngineResource
    from em_assets.resources.warehouse import DuckDBWarehouse


def run_judge(
    context: dg.AssetExecutionContext,
    tasks: Sequence[JudgeTask],
    judge: JudgeSettings,
    llm_api: LLMEngineResource,
    warehouse: DuckDBWarehouse,
    version: str,
) -> tuple[list[JudgeOutput], dict[str, float]]:
    """The judge's outputs, in task order, and the call summary for the asset's metadata."""
    if judge.kind == "local_digit":
        outputs = judge_locally(
            tasks, judge.model, judge.assistant_prefill, judge.word_judge_max_tokens, log=context.log.info
        )
        # The local judge does not go through the engine; its work goes to the ledger here, before
        # the scores, so a crash in between shows the work twice rather than not at all.
        rows = local_ledger_rows(
            tasks, outputs, judge.model, judge.assistant_prefill, {**context_tags(context), "judge_version": version}
        )
        warehouse.append("llm_calls", rows_to_frame(rows))
        calls = CallSummary()
        for row in rows:
            calls.add(row)
        summary = calls.as_metadata()
    else:
        with llm_api.engine(context, warehouse=warehouse) as engine:
            outputs = judge_with_api(tasks, engine, judge.model, judge.word_judge_max_tokens)
            summary = engine.summary().as_metadata()
    return outputs, {k: v for k, v in summary.items() if isinstance(v, (int, float))}
