"""Dagster pools (concurrency limits set in dagster.yaml) that steps of several stages share."""

from em_assets import environment

# Every step that writes the DuckDB file: DuckDB allows one writing process per file.
DUCKDB_WRITER_POOL = "duckdb_writer"
# Every step that trains or runs a local model: each saturates both cores and holds GBs of memory.
LOCAL_TRAINING_POOL = "local_training"


def warehouse_writer_pool(backend: str | None = None) -> str | None:
    """The pool warehouse-writing steps join: ``duckdb_writer`` on the file backend, none on a
    DuckLake (its writers commit concurrently). ``backend`` None: ``EM_WAREHOUSE_BACKEND``, read
    when the definitions load, so the code location and the runs it launches agree."""
    backend = backend or environment.value("EM_WAREHOUSE_BACKEND")
    return DUCKDB_WRITER_POOL if backend == "duckdb" else None


WAREHOUSE_WRITER_POOL = warehouse_writer_pool()
