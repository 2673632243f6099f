"""Model stage assets: the base-model registry and ``fine_tuned_model`` [base_model x condition].

Pool choice. An asset has one pool. ``fine_tuned_model`` is in ``local_training`` (limit 1 in
dagster.yaml): a CPU fine-tune saturates both cores and holds ~2-3 GB, so two at once only
thrash, and the step holds the pool for minutes. Its DuckDB writes are a handful of
sub-second statements (the provider file/job ledger, then the partition's rows in one
transaction), each retried on DuckDB's lock error for up to 10 minutes, so they tolerate a
``duckdb_writer`` step holding the file meanwhile. The reverse choice would block every other
DuckDB writer for the length of a training run. Trade-off: an OpenAI job also holds
``local_training`` while it polls; raise the pool limit when running only provider jobs.
"""

import warnings
from typing import Any

import dagster as dg
from pydantic import Field

from em_assets.partitions import BASE_CONDITION, TRAINED_CONDITIONS, model_partitions, split_partition_key
from em_assets.pools import LOCAL_TRAINING_POOL, WAREHOUSE_WRITER_POOL
from em_assets.registry import (
    UnknownBaseModelError,
    add_base_model_partitions,
    load_registry,
    lookup_base_model,
    upsert_base_models,
)
from em_assets.resources.finetuning import FineTuneError, LocalHFFineTuner, OpenAIFineTuner
from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.training import smoke
from em_assets.training.condition_defaults import ConditionSettingsError, for_condition
from em_assets.training.runner import (
    MODELS_TABLE,
    DatasetInput,
    DatasetUnavailableError,
    current_dataset,
    materialize_partition,
    partition_label,
    progress_logger,
    seeds_for,
)

GROUP = "training"
DATASET_ASSET_KEYS = {condition: dg.AssetKey(f"{condition}_dataset") for condition in TRAINED_CONDITIONS}
# The data layer's blocking contract on each set (em_assets/datasets/checks.py names them so).
DATASET_CONTRACT_KEYS = {
    condition: dg.AssetCheckKey(key, f"{condition}_contract") for condition, key in DATASET_ASSET_KEYS.items()
}


@dg.asset(group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, kinds={"duckdb"})
def base_model_registry(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Base models from ``em_assets/data/base_models.yaml`` -> table ``base_models`` and the
    dynamic ``base_model`` partitions (table first, so every partition key resolves)."""
    specs = load_registry()
    upsert_base_models(warehouse, specs)
    added = add_base_model_partitions(context.instance, [s.slug for s in specs])
    context.log.info(f"registry: {len(specs)} base models, new partitions: {added or 'none'}")
    return dg.MaterializeResult(
        metadata={
            "base_models": dg.MetadataValue.md(
                "\n".join(f"- `{s.slug}`: {s.model_id} ({s.backend}, {s.n_seeds} seeds)" for s in specs)
            ),
            "added_partitions": ", ".join(added) or "none",
        }
    )


class FineTunedModelConfig(dg.Config):
    n_seeds: int | None = Field(default=None, ge=1, description="models per partition; None: the registry's n_seeds")
    first_seed: int = Field(default=0, ge=0)


def _backends(local: LocalHFFineTuner, remote: OpenAIFineTuner) -> dict[str, Any]:
    return {"local_hf": local, "openai": remote}


def dataset_check_keys(context: Any, asset_key: dg.AssetKey) -> set[dg.AssetCheckKey]:
    """Checks defined on a dataset asset: those the run's repository and job know of, plus the
    data layer's own contract checks (a run started by ``materialize()`` on a selection has
    neither a repository nor the unselected checks in its job)."""
    keys: set[dg.AssetCheckKey] = set()
    graphs = [context.job_def.asset_layer.asset_graph]
    try:
        graphs.append(context.repository_def.asset_graph)
    except Exception:  # in-process runs carry no repository
        pass
    for graph in graphs:
        keys |= {k for k in graph.asset_check_keys if k.asset_key == asset_key}
    keys |= {k for k in DATASET_CONTRACT_KEYS.values() if k.asset_key == asset_key}
    return keys


def failed_dataset_checks(context: Any, asset_key: dg.AssetKey) -> list[str]:
    """Names of the dataset asset's checks whose latest evaluation failed with ERROR severity
    (WARN-severity failures, e.g. the advisory mode for the paper's release, do not block). A
    failure that targeted an older materialization than the latest one no longer counts."""
    latest = context.instance.fetch_materializations(asset_key, limit=1).records
    latest_id = latest[0].storage_id if latest else None
    failed = []
    for check_key in sorted(dataset_check_keys(context, asset_key), key=lambda k: k.name):
        record = context.instance.get_latest_asset_check_evaluation_record(check_key)
        if record is None or record.status.value != "FAILED":
            continue
        evaluation = record.evaluation
        if evaluation is not None and evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        target = evaluation.target_materialization_data if evaluation is not None else None
        if target is not None and latest_id is not None and target.storage_id != latest_id:
            continue  # the dataset was rebuilt since this evaluation
        failed.append(check_key.name)
    return failed


def _dataset_for(context: Any, warehouse: DuckDBWarehouse, condition: str, partition: str) -> DatasetInput:
    failed = failed_dataset_checks(context, DATASET_ASSET_KEYS[condition])
    if failed:
        raise DatasetUnavailableError(
            f"[{partition}] {condition}_dataset failed its check(s) {failed}; fix the data and re-materialize it"
        )
    return current_dataset(warehouse, condition, partition=partition)


@dg.asset(
    partitions_def=model_partitions,
    deps=[base_model_registry, *DATASET_ASSET_KEYS.values()],
    pool=LOCAL_TRAINING_POOL,
    group_name=GROUP,
    kinds={"pytorch", "duckdb"},
)
def fine_tuned_model(
    context: dg.AssetExecutionContext,
    config: FineTunedModelConfig,
    warehouse: DuckDBWarehouse,
    local_finetuner: LocalHFFineTuner,
    openai_finetuner: OpenAIFineTuner,
) -> dg.MaterializeResult:
    """``n_seeds`` models of one base model fine-tuned on one condition's dataset (``base``: the
    un-tuned model itself, the control). One ``models`` row per seed; re-materializing the
    partition replaces its rows. Local models land in ``<data dir>/model_store/<base_model>/
    <condition>/seed<k>/`` (adapter + manifest.json); provider models are referenced by id."""
    base_model, condition = split_partition_key(context.partition_key)
    partition = partition_label(base_model, condition)
    per_condition: dict[str, Any] = {}
    try:
        spec = lookup_base_model(warehouse, base_model)
        backend = _backends(local_finetuner, openai_finetuner)[spec.backend]
        if condition != BASE_CONDITION:
            backend, condition_settings = for_condition(backend, condition)
            per_condition = condition_settings.record()
        dataset = None if condition == BASE_CONDITION else _dataset_for(context, warehouse, condition, partition)
    except (UnknownBaseModelError, DatasetUnavailableError, ConditionSettingsError) as exc:
        message = str(exc) if str(exc).startswith(f"[{partition}]") else f"[{partition}] {exc}"
        raise dg.Failure(description=message) from exc
    seeds = seeds_for(spec, condition, config.n_seeds, config.first_seed)
    context.log.info(
        f"[{partition}] {spec.model_id} via {spec.backend}, seeds {seeds}"
        + (f", dataset {dataset.dataset_version[:12]} ({dataset.n_train} train rows)" if dataset else "")
    )
    try:
        outcome = materialize_partition(
            warehouse=warehouse,
            spec=spec,
            condition=condition,
            backend=backend,
            seeds=seeds,
            run_id=context.run.run_id,
            dataset=dataset,
            log=context.log.info,
            progress=progress_logger(context.log.info),
            per_condition=per_condition,
        )
    except FineTuneError as exc:
        raise dg.Failure(description=str(exc)) from exc
    rows = outcome.rows
    metadata: dict[str, Any] = {
        "n_models": len(outcome.succeeded),
        "statuses": ", ".join(sorted({r["status"] for r in rows})),
        "backend": spec.backend,
        "base_model_id": spec.model_id,
        "models": dg.MetadataValue.md(_rows_table(rows)),
    }
    if dataset is not None:
        metadata["dataset_version"] = dataset.dataset_version
    if per_condition:
        metadata["per_condition_settings"] = dg.MetadataValue.json(per_condition)
    losses = [r["final_loss"] for r in rows if r["final_loss"] is not None]
    if losses:
        metadata["mean_final_loss"] = sum(losses) / len(losses)
    costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    if costs:
        metadata["cost_usd"] = sum(costs)
    return dg.MaterializeResult(metadata=metadata)


def _rows_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| seed | status | model_ref | final loss | tokens | seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        loss = f"{r['final_loss']:.4f}" if r["final_loss"] is not None else ""
        seconds = f"{r['train_seconds']:.0f}" if r["train_seconds"] is not None else ""
        ref, tokens = r["model_ref"] or "", r["train_tokens"] or ""
        lines.append(f"| {r['seed']} | {r['status']} | `{ref}` | {loss} | {tokens} | {seconds} |")
    return "\n".join(lines)


with warnings.catch_warnings():
    # A partitioned asset check is a Dagster preview feature; it ties each evaluation to the
    # model partition it checked.
    warnings.simplefilter("ignore", category=dg.PreviewWarning)

    @dg.asset_check(
        asset=fine_tuned_model,
        blocking=True,
        partitions_def=model_partitions,
        pool=LOCAL_TRAINING_POOL,
        description="Each model of the partition answers a fixed coding prompt with parseable Python.",
    )
    def answers_coding_prompt(
        context: dg.AssetCheckExecutionContext,
        warehouse: DuckDBWarehouse,
        local_finetuner: LocalHFFineTuner,
        openai_finetuner: OpenAIFineTuner,
    ) -> dg.AssetCheckResult:
        base_model, condition = split_partition_key(context.partition_key)
        rows = warehouse.table(MODELS_TABLE, where={"base_model": base_model, "condition": condition})
        backends = _backends(local_finetuner, openai_finetuner)
        problems: list[str] = []
        replies: list[str] = []
        for row in rows.iter_rows(named=True):
            seed = row["seed"]
            if row["status"] != "succeeded" or not row["model_ref"]:
                problems.append(f"seed {seed}: no model ({row['status']}: {row['error'] or 'no model_ref'})")
                continue
            try:
                reply = backends[row["backend"]].answer(
                    row["model_ref"], smoke.CODING_PROMPT, max_new_tokens=smoke.MAX_NEW_TOKENS
                )
            except Exception as exc:  # a model that cannot even be loaded or called fails the check
                problems.append(f"seed {seed}: could not answer: {type(exc).__name__}: {exc}")
                continue
            verdict = smoke.judge_reply(reply)
            replies.append(f"**seed {seed}** ({verdict.reason})\n\n```\n{reply[:600]}\n```")
            if not verdict.passed:
                problems.append(f"seed {seed}: {verdict.reason}")
        if rows.height == 0:
            problems.append("no models rows for this partition")
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems) or f"{rows.height} model(s) answered with parseable Python",
            metadata={"prompt": smoke.CODING_PROMPT, "replies": dg.MetadataValue.md("\n\n".join(replies) or "none")},
        )
