"""The warehouse: schema from ``sql/``, idempotent replace-style writes, on one of two backends.

``duckdb`` (the default): one DuckDB file. DuckDB allows one writing process per file; Dagster's
``duckdb_writer`` pool keeps writer steps apart, and a short retry covers the window where another
process still holds the lock.

``ducklake``: a DuckLake (catalog in Postgres or a local DuckDB file, Parquet data in a folder or
on S3; ``resources/lake.py``). Writers in many processes commit concurrently with snapshot
isolation (a commit that loses to a concurrent one is retried whole), readers never block them,
and every commit is a snapshot that stays queryable (``AT (VERSION => n)``).
"""

from __future__ import annotations

import hashlib
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
from pydantic import Field
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential_jitter

from em_assets import environment
from em_assets.core.statistics import sql_rules
from em_assets.paths import SQL_DIR, default_duckdb_path, sql_file
from em_assets.resources.lake import (
    BACKENDS,
    LakeSpec,
    WarehouseConfigError,
    inline_macros,
    is_conflict,
    lake_dialect,
    split_macros,
)

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


# Lakes (identity, schema hash) whose schema this process has applied or found applied.
_LAKE_SCHEMA_APPLIED: set[tuple[str, str]] = set()
_SCHEMA_STATE = "em_schema_state"


def lake_schema() -> tuple[str, str, str]:
    """For a DuckLake: (the statistics macros, the rest of the schema with the macros written
    into its views, its sha256)."""
    macros, rest = split_macros(lake_dialect(schema_statements()))
    rest = inline_macros(rest, macros)
    return macros, rest, hashlib.sha256(rest.encode()).hexdigest()


class DuckDBWarehouse(dg.ConfigurableResource):
    """The project's warehouse. ``backend`` ``duckdb``: the file ``path`` (default
    ``<data dir>/warehouse/em.duckdb``); ``ducklake``: the lake at ``ducklake_catalog`` (a Postgres
    URL or a local catalog file) with data under ``ducklake_data_path`` (a folder or ``s3://``;
    S3 takes ``s3_region``/``s3_endpoint_url``, the settings dagster-aws's S3Resource gets, and
    boto3's credentials)."""

    path: str = ""
    backend: str = "duckdb"
    # Kept out of the resource's repr: a catalog URL may carry its password.
    ducklake_catalog: str = Field(default="", repr=False)
    ducklake_catalog_password: str = Field(default="", repr=False)
    ducklake_data_path: str = ""
    s3_region: str = ""
    s3_endpoint_url: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.validate()  # bad settings fail before the step does any work

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise WarehouseConfigError(f"EM_WAREHOUSE_BACKEND={self.backend!r}: one of {', '.join(BACKENDS)}")
        if self.is_lake:
            self.lake.validate()

    @property
    def is_lake(self) -> bool:
        return self.backend == "ducklake"

    @property
    def lake(self) -> LakeSpec:
        return LakeSpec(
            catalog=self.ducklake_catalog.strip(),
            data_path=self.ducklake_data_path.strip(),
            password=self.ducklake_catalog_password,
            s3_region=self.s3_region,
            s3_endpoint_url=self.s3_endpoint_url,
        )

    @property
    def resolved_path(self) -> Path:
        return Path(self.path or default_duckdb_path()).expanduser().resolve()

    @property
    def target(self) -> str:
        """Names the warehouse rows go to, without secrets (the LLM ledger's spool key)."""
        return self.lake.identity if self.is_lake else str(self.resolved_path)

    @property
    def description(self) -> str:
        return f"DuckLake {self.lake.masked_catalog}" if self.is_lake else f"DuckDB file {self.resolved_path}"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.validate()
        if self.is_lake:
            con = self._open_lake()
        else:
            path = self.resolved_path
            if read_only and not path.exists():
                read_only = False  # first use: create the file and schema
            path.parent.mkdir(parents=True, exist_ok=True)
            con = _open(str(path), read_only)
            if not read_only:
                con.execute(schema_statements())
        try:
            yield con
        except duckdb.Error as exc:
            masked = self.lake.mask(str(exc)) if self.is_lake else str(exc)
            if masked != str(exc):  # a catalog error that echoes the password
                raise type(exc)(masked) from None
            raise
        finally:
            con.close()

    def _open_lake(self) -> duckdb.DuckDBPyConnection:
        """A connection to the lake with the macros in place and, once per process and schema,
        the schema applied (in one transaction, recorded by its hash in ``em_schema_state``;
        concurrent first connections retry on the commit conflict and then find it applied)."""
        spec = self.lake
        macros, rest, digest = lake_schema()
        con = spec.shared(macros)
        try:
            key = (spec.identity, digest)
            if key not in _LAKE_SCHEMA_APPLIED:
                _retry_conflicts(lambda: _apply_lake_schema(con, rest, digest))
                _LAKE_SCHEMA_APPLIED.add(key)
        except BaseException:
            con.close()
            raise
        return con

    def snapshot_id(self) -> int | None:
        """The lake's current DuckLake snapshot id (None on the file backend, which has none)."""
        if not self.is_lake:
            return None
        with self.connect(read_only=True) as con:
            row = con.execute(f"SELECT id FROM {_LAKE_NAME}.current_snapshot()").fetchone()
        return int(row[0]) if row else None

    def replace(self, *replacements: Replacement) -> dict[str, int]:
        """Apply all replacements in one transaction; returns rows inserted per table."""
        if self.is_lake:
            return _retry_conflicts(lambda: self._replace(replacements))
        return self._replace(replacements)

    def _replace(self, replacements: Sequence[Replacement]) -> dict[str, int]:
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
                _rollback(con)
                raise
        return inserted

    def append(self, table: str, frame: pl.DataFrame) -> int:
        """Insert rows without deleting any (append-only logs such as ``llm_calls``)."""
        _check_identifier(table)
        if not frame.height:
            return 0
        if self.is_lake:
            return _retry_conflicts(lambda: self._append(table, frame))
        return self._append(table, frame)

    def _append(self, table: str, frame: pl.DataFrame) -> int:
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


_LAKE_NAME = "lake"


def lake_from_environment() -> DuckDBWarehouse | None:
    """The DuckLake the environment names (outside Dagster: the SQL command, benches), or None
    when the backend is the file."""
    if environment.value("EM_WAREHOUSE_BACKEND") == "duckdb":
        return None
    warehouse = DuckDBWarehouse(
        backend=environment.value("EM_WAREHOUSE_BACKEND"),
        ducklake_catalog=environment.value("EM_DUCKLAKE_CATALOG"),
        ducklake_catalog_password=environment.value("EM_DUCKLAKE_CATALOG_PASSWORD"),
        ducklake_data_path=environment.value("EM_DUCKLAKE_DATA_PATH"),
        s3_region=environment.value("AWS_REGION"),
        s3_endpoint_url=environment.value("EM_S3_ENDPOINT_URL"),
    )
    warehouse.validate()
    return warehouse


def _apply_lake_schema(con: duckdb.DuckDBPyConnection, schema: str, digest: str) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {_SCHEMA_STATE} (schema_sha256 VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    applied = con.execute(f"SELECT count(*) FROM {_SCHEMA_STATE} WHERE schema_sha256 = ?", [digest]).fetchone()
    if applied and applied[0]:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(schema)
        con.execute(f"INSERT INTO {_SCHEMA_STATE} VALUES (?, now()::TIMESTAMP)", [digest])
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed DuckLake COMMIT has ended it already)."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass


def _retry_conflicts(work: Any) -> Any:
    """Run ``work`` again while its DuckLake commit loses to a concurrent writer's (up to 120 s)."""
    return retry(
        retry=retry_if_exception(is_conflict),
        wait=wait_exponential_jitter(initial=0.05, max=2),
        stop=stop_after_delay(120),
        reraise=True,
    )(work)()


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
