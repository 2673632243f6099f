"""The broad probe's positive control, per base model (``em_assets.probes.control`` says why).

It trains an adapter on the contrast set's misaligned answers to half of the main questions and
scores the broad probe's items of the other half. Its rows land in ``probe_scores`` under the
condition ``positive_control``, so the summary's shift table compares it with the base model on
exactly those held-out items, beside every condition's broad shift.
"""

import dagster as dg
import polars as pl

from em_assets.core.atomic_files import write_file_atomically
from em_assets.evaluation.partition_models import OPEN_MODEL_BACKENDS, succeeded_models
from em_assets.evaluation.probe_assets import probe_rows, score_items
from em_assets.evaluation.settings import ProbeSettings
from em_assets.partitions import BASE_CONDITION, base_model_partitions
from em_assets.paths import data_dir
from em_assets.pools import LOCAL_TRAINING_POOL
from em_assets.probes.control import (
    POSITIVE_CONTROL,
    TRAINING_OVERRIDES,
    data_version,
    held_out_items,
    split_questions,
    training_conversations,
    training_jsonl,
)
from em_assets.probes.estimates import broad_shift
from em_assets.probes.items import broad_items, items_version
from em_assets.resources.finetuning import FineTuneError, FineTuneRequest, LocalHFFineTuner
from em_assets.resources.warehouse import DuckDBWarehouse, Replacement
from em_assets.training.runner import model_store_dir

SEED = 0


@dg.asset(
    partitions_def=base_model_partitions,
    group_name="evaluation",
    pool=LOCAL_TRAINING_POOL,
    kinds={"python", "pytorch", "duckdb"},
)
def positive_control(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    probe_settings: ProbeSettings,
    local_finetuner: LocalHFFineTuner,
) -> dg.MaterializeResult:
    """A planted broad shift: train on misaligned answers to half the main questions, probe the
    other half. Needs the base partition's model row; skipped (with a note) for API-only models."""
    slug = context.partition_key
    base = succeeded_models(warehouse, slug, BASE_CONDITION).row(0, named=True)
    if base["backend"] not in OPEN_MODEL_BACKENDS or str(base["model_ref"]).startswith("s3://"):
        note = f"{base['model_ref']} ({base['backend']}) cannot be trained and probed here"
        context.log.warning(f"positive control skipped: {note}")
        return dg.MaterializeResult(metadata={"skipped": note})

    contrast = probe_settings.contrast_items()
    trained, held_out = split_questions(item.question_id for item in contrast)
    text = training_jsonl(training_conversations(contrast, trained))
    version = data_version(text)
    jsonl = data_dir() / "datasets" / POSITIVE_CONTROL / f"{version}.jsonl"
    write_file_atomically(jsonl, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    # Explicit fields win over the embedded budget, so the control's recipe holds on every model.
    configured = {name: getattr(local_finetuner, name) for name in local_finetuner.model_fields_set}
    finetuner = LocalHFFineTuner(**{**configured, **TRAINING_OVERRIDES})
    request = FineTuneRequest(
        partition=f"{slug}|{POSITIVE_CONTROL}",
        base_model=slug,
        base_model_id=base["model_ref"],
        condition=POSITIVE_CONTROL,
        seed=SEED,
        dataset_version=version,
        jsonl_path=str(jsonl),
        output_dir=str(model_store_dir(slug, POSITIVE_CONTROL, SEED)),
    )
    try:
        trained_model = finetuner.fine_tune(request, log=context.log.info)
    except FineTuneError as err:
        raise dg.Failure(str(err)) from err

    items = held_out_items(broad_items(contrast), held_out)
    scored = score_items(trained_model.model_ref, items, probe_settings.batch_size)
    versions = {"broad": items_version(items)}
    rows = probe_rows(context.run_id, slug, POSITIVE_CONTROL, SEED, trained_model.model_ref, items, scored, versions)
    frame = pl.DataFrame(rows)
    warehouse.replace(
        Replacement(
            "probe_scores", frame, {"probe_run_id": context.run_id, "base_model": slug, "condition": POSITIVE_CONTROL}
        )
    )
    metadata = {
        "trained_questions": dg.MetadataValue.json(trained),
        "held_out_questions": dg.MetadataValue.json(held_out),
        "training_examples": trained_model.details.get("n_examples"),
        "training_steps": trained_model.details.get("steps"),
        "final_loss": trained_model.final_loss,
        "held_out_items": len(items),
    }
    reference = warehouse.table("current_probe_scores", {"base_model": slug, "condition": BASE_CONDITION})
    if reference.height:
        both = pl.concat([frame, reference.select(frame.columns)], how="vertical_relaxed")
        shift = broad_shift(both, POSITIVE_CONTROL, BASE_CONDITION)
        metadata |= {"broad_shift_vs_base": shift.estimate, "ci_low": shift.ci_low, "ci_high": shift.ci_high}
        context.log.info(
            f"positive control: broad shift on the held-out questions {shift.estimate:+.3f} nats/token "
            f"[{shift.ci_low:+.3f}, {shift.ci_high:+.3f}] over {shift.n_items} items, {shift.n_groups} questions"
        )
    else:
        context.log.warning("no probe scores of the base partition yet: the shift is computed by the summary")
    return dg.MaterializeResult(metadata=metadata)
