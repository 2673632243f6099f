"""Where the project's shipped files and its run-time outputs live.

Shipped inputs sit inside the package (``em_assets/data``); SQL sits at the repo top level
(``sql/``); run-time outputs (DuckDB file, JSONL datasets, model store, reports) go under one
data folder, ``<repo>/data`` unless ``EM_DATA_DIR`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

from em_assets import environment

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
SHIPPED_DATA_DIR = PACKAGE_DIR / "data"
SQL_DIR = REPO_DIR / "sql"


def data_dir() -> Path:
    """Root of run-time outputs; created on first use."""
    path = Path(environment.value("EM_DATA_DIR") or REPO_DIR / "data").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_duckdb_path() -> str:
    return environment.value("EM_DUCKDB_PATH") or str(data_dir() / "warehouse" / "em.duckdb")


def sql_file(relative: str) -> str:
    """Text of one SQL file under ``sql/``."""
    path = SQL_DIR / relative
    if not path.is_file():
        raise FileNotFoundError(f"SQL file not found: {path}")
    return path.read_text(encoding="utf-8")
