"""One warehouse write of the kind concurrent runs make, for the lake tests and the warehouse
bench: replace the writer's own ``filter_steps`` rows (a delete and an insert, which conflict
between concurrent writers and are retried) and append one ``finetune_files`` row."""

from datetime import datetime

import polars as pl

from em_assets.resources.warehouse import DuckDBWarehouse, Replacement

WHEN = datetime(2026, 1, 1)


def write_once(warehouse: DuckDBWarehouse, tag: str, i: int, rows: int) -> None:
    steps = pl.DataFrame({"step_order": list(range(rows))}).with_columns(
        step=pl.lit(tag),
        rows_in=pl.lit(i),
        rows_out=pl.lit(i),
        flagged=pl.lit(0),
        dropping=pl.lit(False),
        reasons=pl.lit("{}"),
        seconds=pl.lit(0.0),
        created_at=pl.lit(WHEN),
    )
    warehouse.replace(Replacement("filter_steps", steps, {"step": tag}))
    files = pl.DataFrame({"provider": [tag], "content_sha256": [f"{tag}-{i}"], "file_id": ["f"], "filename": ["x"]})
    warehouse.append("finetune_files", files.with_columns(n_bytes=pl.lit(1, dtype=pl.Int64), created_at=pl.lit(WHEN)))
