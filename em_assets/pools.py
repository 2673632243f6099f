"""Dagster pools (concurrency limits set in dagster.yaml) that steps of several stages share."""

# Every step that writes the DuckDB file: DuckDB allows one writing process per file.
DUCKDB_WRITER_POOL = "duckdb_writer"
# Every step that trains or runs a local model: each saturates both cores and holds GBs of memory.
LOCAL_TRAINING_POOL = "local_training"
