"""Judge-free likelihood probes per model partition, and the judge's calibration per judge
version: the measurements that make a run's numbers readable (issue 14)."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from em_assets.core.markdown import markdown_table
from em_assets.evaluation.judge_runner import run_judge
from em_assets.evaluation.partition_models import OPEN_MODEL_BACKENDS, succeeded_models
from em_assets.evaluation.question_sources import load_sources
from em_assets.evaluation.settings import JudgeSettings, ProbeSettings
from em_assets.judge.calibration import calibration
from em_assets.judge.scoring import JudgeTask
from em_assets.partitions import model_partitions, split_partition_key
from em_assets.pools import LOCAL_TRAINING_POOL
from em_assets.probes.items import ProbeItem, broad_items, items_version, narrow_items
from em_assets.probes.likelihood import AnswerLogprob, ProbeError, answer_logprobs
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.warehouse import DuckDBWarehouse, Replacement

GROUP = "evaluation"
CALIBRATION_METRICS = ("aligned", "coherent")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def score_items(model_ref: str, items: list[ProbeItem], batch_size: int, debug=None) -> list[AnswerLogprob]:
    """log P of each item's answer under the model (loaded here, dropped after); a bad item
    fails the asset naming it."""
    from em_assets.models.loading import load

    lm, tokenizer = load(model_ref)
    try:
        return answer_logprobs(
            lm,
            tokenizer,
            [i.messages for i in items],
            labels=[f"{i.probe}:{i.item_id}:{i.variant}" for i in items],
            batch_size=batch_size,
            progress=(lambda done, total: debug(f"scored {done}/{total}")) if debug else None,
        )
    except ProbeError as err:
        raise dg.Failure(str(err)) from err
    finally:
        del lm


def probe_rows(
    run_id: str,
    base_model: str,
    condition: str,
    seed: int,
    model_ref: str,
    items: list[ProbeItem],
    scored: list[AnswerLogprob],
    versions: dict[str, str],
) -> list[dict]:
    """``probe_scores`` rows of one model's scored items (``versions``: probe -> items version)."""
    return [
        {
            "probe_run_id": run_id,
            "base_model": base_model,
            "condition": condition,
            "seed": seed,
            "model_ref": model_ref,
            "probe": i.probe,
            "items_version": versions[i.probe],
            "item_id": i.item_id,
            "group_id": i.group_id,
            "variant": i.variant,
            "logprob": s.logprob,
            "n_tokens": s.n_tokens,
            "created_at": _now(),
        }
        for i, s in zip(items, scored, strict=True)
    ]


@dg.asset(
    partitions_def=model_partitions,
    group_name=GROUP,
    deps=["fine_tuned_model", "filtered_code_samples"],
    pool=LOCAL_TRAINING_POOL,
    kinds={"python", "pytorch", "duckdb"},
)
def likelihood_probes(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, probe_settings: ProbeSettings
) -> dg.MaterializeResult:
    """Every open model of the partition scores the narrow probe (held-out tasks, insecure vs
    secure code) and the broad probe (the contrast set's answers): forward passes only, no judge.
    Models served only by an API cannot score given text and are skipped with a note."""
    base_model, condition = split_partition_key(context.partition_key)
    models = succeeded_models(warehouse, base_model, condition)
    narrow = narrow_items(warehouse.table("filtered_code_samples"), probe_settings.narrow_max_tasks)
    broad = broad_items(probe_settings.contrast_items())
    if not narrow:
        context.log.warning("no held-out task has both a secure and an insecure sample: the narrow probe is empty")
    versions = {"narrow": items_version(narrow), "broad": items_version(broad)}
    items: list[ProbeItem] = narrow + broad
    rows, skipped = [], []
    for model in models.iter_rows(named=True):
        if model["backend"] not in OPEN_MODEL_BACKENDS or str(model["model_ref"]).startswith("s3://"):
            skipped.append(
                f"seed {model['seed']} ({model['backend']}: {model['model_ref']}) cannot score given text here"
            )
            continue
        scored = score_items(model["model_ref"], items, probe_settings.batch_size, context.log.debug)
        rows += probe_rows(
            context.run_id, base_model, condition, model["seed"], model["model_ref"], items, scored, versions
        )
        context.log.info(f"seed {model['seed']}: scored {len(items)} probe items")
    for note in skipped:
        context.log.warning(f"likelihood probes skipped: {note}")
    frame = pl.DataFrame(rows) if rows else pl.DataFrame()
    if rows:
        warehouse.replace(
            Replacement(
                "probe_scores",
                frame,
                {"probe_run_id": context.run_id, "base_model": base_model, "condition": condition},
            )
        )
    summary = (
        frame.with_columns(per_token=pl.col("logprob") / pl.col("n_tokens"))
        .group_by("probe", "variant")
        .agg(
            items=pl.len(),
            mean_logprob=pl.col("logprob").mean().round(2),
            mean_per_token=pl.col("per_token").mean().round(4),
        )
        .sort("probe", "variant")
        if rows
        else pl.DataFrame()
    )
    return dg.MaterializeResult(
        metadata={
            "models_scored": len(models) - len(skipped),
            "models_skipped": dg.MetadataValue.json(skipped),
            "narrow_tasks": len(narrow) // 2,
            "broad_items": len(broad),
            **{f"{p}_items_version": v for p, v in versions.items()},
            "mean_scores": dg.MetadataValue.md(markdown_table(summary) if rows else "nothing scored"),
        }
    )


def _calibration_items(items, per_kind: int):
    if not per_kind:
        return items
    kept, seen = [], {}
    for item in items:  # file order: the first per_kind of each (question, kind)
        key = (item.question_id, item.kind)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= per_kind:
            kept.append(item)
    return kept


@dg.asset(group_name=GROUP, pool=LOCAL_TRAINING_POOL, kinds={"python", "duckdb"})
def judge_calibration(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    judge: JudgeSettings,
    llm_api: LLMEngineResource,
    probe_settings: ProbeSettings,
) -> dg.MaterializeResult:
    """The configured judge scores the contrast set (answers aligned, misaligned or incoherent
    by construction): AUROCs and threshold shares per judge version, so the summary can say how
    far that judge's rates can be trusted. Scores kept for a version are not asked for again."""
    items = _calibration_items(probe_settings.contrast_items(), probe_settings.calibration_items_per_kind)
    questions = {q.id: q for _, q in load_sources(["em_main"])}
    version = judge.version([questions[q] for q in sorted({i.question_id for i in items})])
    existing = warehouse.table("judge_calibration_scores", {"judge_version": version})
    done = set(zip(existing["item_id"].to_list(), existing["metric"].to_list()))
    tasks = [
        JudgeTask(i.item_id, questions[i.question_id], metric, i.asked, i.text)
        for i in items
        for metric in CALIBRATION_METRICS
        if (i.item_id, metric) not in done
    ]
    context.log.info(f"judge {version}: {len(tasks)} contrast answers to score, {len(done)} already scored")
    outputs, calls = run_judge(context, tasks, judge, llm_api, warehouse, version)
    by_id = {i.item_id: i for i in items}
    new = pl.DataFrame(
        [
            {
                "judge_version": version,
                "item_id": o.response_id,
                "question_id": by_id[o.response_id].question_id,
                "kind": by_id[o.response_id].kind,
                "category": by_id[o.response_id].category,
                "metric": o.metric,
                "score": o.score,
                "numeric_mass": o.numeric_mass,
                "judged_at": _now(),
            }
            for o in outputs
        ],
        schema_overrides={"category": pl.String, "score": pl.Float64, "numeric_mass": pl.Float64},
    )
    scores = (
        pl.concat([existing, new], how="diagonal_relaxed")
        if existing.height and new.height
        else (new if new.height else existing)
    )
    wanted = {i.item_id for i in items}
    scores = scores.filter(pl.col("item_id").is_in(list(wanted)))
    wide = scores.pivot(on="metric", index=["item_id", "kind"], values="score", aggregate_function="first")
    figures = calibration(wide)
    row = {
        "judge_version": version,
        "items_version": items_version(broad_items(items)),
        **figures,
        "calibrated_at": _now(),
    }
    warehouse.replace(
        Replacement("judge_calibration_scores", scores, {"judge_version": version}),
        Replacement("judge_calibration", pl.DataFrame([row]), {"judge_version": version}),
    )
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()}
    context.log.info(f"judge {version}: AUROC aligned {shown['auroc_aligned']}, coherent {shown['auroc_coherent']}")
    return dg.MaterializeResult(
        metadata={"judge_version": version, **{k: v for k, v in shown.items() if v is not None}, **calls}
    )
