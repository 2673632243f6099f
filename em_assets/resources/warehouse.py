"""The DuckDB warehouse: one file, schema from ``sql/``, idempotent replace-style writes.

DuckDB allows one writing process per file; Dagster's ``duckdb_writer`` pool keeps writer
steps apart, and a short retry covers the window where another process still holds the lock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import dagster as dg
import duckdb
import polars as pl
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential_jitter

from em_assets.core.statistics import sql_rules
from em_assets.paths import SQL_DIR, default_duckdb_path, sql_file

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@dataclass(frozen=True)
class Replacement:
    """Delete the rows of ``table`` matching ``where`` (all rows when empty), then insert ``frame``."""

    table: str
    frame: pl.DataFrame
    where: Mapping[str, Any] = field(default_factory=dict)


def schema_statements() -> str:
    """``schema.sql``, each stage's ``schema/*.sql``, the statistics rules (their numbers filled
    in from ``core/statistics.py``), then the other views, in name order."""
    rules = SQL_DIR / "views" / "rules.sql"
    views = [p for p in sorted((SQL_DIR / "views").glob("*.sql")) if p != rules]
    tables = sorted((SQL_DIR / "schema").glob("*.sql"))
    return "\n".join(
        [
            sql_file("schema.sql"),
            *(p.read_text(encoding="utf-8") for p in tables),
            Template(rules.read_text(encoding="utf-8")).substitute(sql_rules()),
            *(p.read_text(encoding="utf-8") for p in views),
        ]
    )


class DuckDBWarehouse(dg.ConfigurableResource):
    """The project's DuckDB file. ``path`` defaults to ``<data dir>/warehouse/em.duckdb``."""

    path: str = ""

    @property
    def resolved_path(self) -> Path:
        return Path(self.path or default_duckdb_path()).expanduser().resolve()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.resolved_path
        if read_only and not path.exists():
            read_only = False  # first use: create the file and schema
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _open(str(path), read_only)
        try:
            if not read_only:
                con.execute(schema_statements())
            yield con
        finally:
            con.close()

    def replace(self, *replacements: Replacement) -> dict[str, int]:
        """Apply all replacements in one transaction; returns rows inserted per table."""
        inserted: dict[str, int] = {}
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for i, rep in enumerate(replacements):
                    _check_identifier(rep.table)
                    for column in rep.where:
                        _check_identifier(column)
                    clause = " AND ".join(f"{c} = ?" for c in rep.where) or "TRUE"
                    con.execute(f"DELETE FROM {rep.table} WHERE {clause}", list(rep.where.values()))
                    if rep.frame.height:
                        view = f"_em_frame_{i}"
                        con.register(view, rep.frame.to_arrow())
                        con.execute(f"INSERT INTO {rep.table} BY NAME SELECT * FROM {view}")
                        con.unregister(view)
                    inserted[rep.table] = inserted.get(rep.table, 0) + rep.frame.height
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return inserted

    def append(self, table: str, frame: pl.DataFrame) -> int:
        """Insert rows without deleting any (append-only logs such as ``llm_calls``)."""
        _check_identifier(table)
        if not frame.height:
            return 0
        with self.connect() as con:
            con.register("_em_append", frame.to_arrow())
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _em_append")
            con.unregister("_em_append")
        return frame.height

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pl.DataFrame:
        with self.connect(read_only=True) as con:
            relation = con.sql(sql, params=params or None)
            if relation is None:  # a statement without a result set
                return pl.DataFrame()
            return relation.pl()

    def query_file(self, relative: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Run one SQL file from ``sql/`` (e.g. ``queries/filter_funnel.sql``)."""
        return self.query(sql_file(relative), params)

    def table(self, name: str, where: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """All rows of one table (optionally filtered by equality), in insertion order."""
        _check_identifier(name)
        where = where or {}
        for column in where:
            _check_identifier(column)
        clause = " AND ".join(f"{c} = ?" for c in where) or "TRUE"
        return self.query(f"SELECT * FROM {name} WHERE {clause}", list(where.values()))


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")


@retry(
    retry=retry_if_exception(_is_lock_error),
    wait=wait_exponential_jitter(initial=0.2, max=5),
    stop=stop_after_delay(120),
    reraise=True,
)
def _open(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(path, read_only=read_only)
