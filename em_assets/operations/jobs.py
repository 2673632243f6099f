"""The jobs the operations layer starts: whole chains for new base models, re-evaluation of
trained ones, and the summary after a batch of either."""

from __future__ import annotations

import dagster as dg

# Other stages' assets by key: the operations layer starts them, it does not import them.
EVALUATION_ASSETS = ("sampled_responses", "judge_scores", "code_vulnerability_rate", "likelihood_probes")

# Per (base_model, condition) partition; the checks of these assets run with them (the
# blocking coding-prompt check stops a model that cannot write code before it is sampled).
new_base_model_job = dg.define_asset_job(
    "new_base_model_chain",
    selection=dg.AssetSelection.assets("fine_tuned_model", *EVALUATION_ASSETS),
    description="A new base model, one condition: fine-tune (or the control), sample, judge, code check, probes.",
)
reevaluation_job = dg.define_asset_job(
    "reevaluation",
    selection=dg.AssetSelection.assets(*EVALUATION_ASSETS),
    description="Sample, judge, code-check and probe an already trained model again (no retraining).",
)
summary_job = dg.define_asset_job(
    "evaluation_summary",
    selection=dg.AssetSelection.assets("summary"),
    description="The summary tables, chart and report over the latest runs.",
)

OPERATIONS_JOBS = [new_base_model_job, reevaluation_job, summary_job]
