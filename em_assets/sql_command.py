"""``python -m em_assets sql FILE``: query the warehouse while a run writes it, without blocking it.

DuckDB lets one process write a file and refuses readers meanwhile ("Conflicting lock is
held"); a reader left open in turn makes the writer wait. This command opens the file
read-only, retrying briefly while a writer holds it (each write step holds it for well under a
second), runs one query, copies the result out and closes at once. A query that runs longer
than ``--max-seconds`` (default 30) is interrupted, so a reader never holds the file near the
2 minutes a run's writes wait for the lock. With ``EM_WAREHOUSE_BACKEND=ducklake`` (and no
``--db``) it queries the lake instead, where readers never block writers.

``FILE`` is a path (``sql/queries/llm_cost_by_asset.sql``), a query name (``llm_cost_by_asset``)
or the SQL text itself. ``$name`` parameters are bound from ``--param name=value``; unset ones
are NULL, which the shipped queries read as "no filter".
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import threading
import time
from pathlib import Path

import duckdb
import polars as pl

from em_assets.paths import SQL_DIR, default_duckdb_path
from em_assets.resources.lake import WarehouseConfigError
from em_assets.resources.warehouse import DuckDBWarehouse, lake_from_environment

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class QueryError(RuntimeError):
    """A query that could not run; the message says which file or setting and why."""


def query_text(target: str) -> str:
    """SQL of a query name, a file path, or the text itself."""
    named = SQL_DIR / "queries" / f"{target}.sql"
    if named.is_file():
        return named.read_text(encoding="utf-8")
    path = Path(target)
    if target.endswith(".sql"):
        if not path.is_file():
            raise QueryError(f"{target}: no such SQL file (shipped queries: {', '.join(shipped_queries())})")
        return path.read_text(encoding="utf-8")
    if re.search(r"\b(select|with|from|pragma|describe|show)\b", target, re.IGNORECASE):
        return target
    raise QueryError(
        f"{target!r} is neither a query name, a .sql file nor SQL (shipped queries: {', '.join(shipped_queries())})"
    )


LAKE_ONLY = "-- backend: ducklake"  # first line of a query that reads DuckLake snapshots


def is_lake_only(sql: str) -> bool:
    return sql.lstrip().startswith(LAKE_ONLY)


def shipped_queries() -> list[str]:
    return sorted(p.stem for p in (SQL_DIR / "queries").glob("*.sql"))


def parameters(sql: str, given: dict[str, str]) -> dict[str, str | None]:
    """Every ``$name`` of ``sql``: the given value, else NULL. Unknown names are errors."""
    used = set(_PARAMETER.findall(re.sub(r"--[^\n]*", "", sql)))
    unknown = sorted(set(given) - used)
    if unknown:
        raise QueryError(f"--param {unknown[0]}: the query has no ${unknown[0]} (it takes: {sorted(used) or 'none'})")
    return {name: given.get(name) for name in used}


def run_query(
    sql: str,
    params: dict[str, str | None],
    path: str,
    *,
    wait_s: float = 60.0,
    max_seconds: float = 30.0,
    lake: DuckDBWarehouse | None = None,
) -> pl.DataFrame | None:
    """The query's result (None for a statement without one). On the file backend it retries the
    read-only open while a writer holds the file, for up to ``wait_s``; on a DuckLake (``lake``)
    readers and writers never wait for each other."""
    if lake is not None:
        try:
            with lake.connect(read_only=True) as con:
                return _run(con, sql, params, max_seconds)
        except duckdb.Error as exc:
            raise QueryError(f"{lake.description}: {lake.lake.mask(str(exc))}") from None
    if is_lake_only(sql):
        raise QueryError("the query reads DuckLake snapshots: set EM_WAREHOUSE_BACKEND=ducklake (the file keeps none)")
    if not Path(path).is_file():
        raise QueryError(f"{path}: no warehouse file yet (run the pipeline first, or set EM_DUCKDB_PATH)")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(path, read_only=True)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise QueryError(f"{path}: cannot open read-only: {exc}") from None
            time.sleep(random.uniform(0.02, 0.2))  # a write step holds the file for well under a second
    try:
        return _run(con, sql, params, max_seconds)
    finally:
        con.close()


def _run(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, str | None], max_seconds: float
) -> pl.DataFrame | None:
    timer = threading.Timer(max_seconds, con.interrupt)
    timer.start()
    try:
        relation = con.sql(sql, params=params or None)
        return relation.pl() if relation is not None else None
    except duckdb.InterruptException:
        raise QueryError(
            f"the query ran over --max-seconds {max_seconds:g} and was stopped (it would hold the file)"
        ) from None
    except duckdb.Error as exc:
        raise QueryError(f"the query failed: {exc}") from None
    finally:
        timer.cancel()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m em_assets sql", description=__doc__.splitlines()[0])
    parser.add_argument("query", help="a query name (e.g. llm_cost_by_asset), a .sql file, or SQL text")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="bind $NAME (repeatable)")
    parser.add_argument(
        "--db", default="", help="the DuckDB file (default: EM_DUCKDB_PATH or data/warehouse/em.duckdb)"
    )
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a writer to let go (default 60)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop a query running longer (default 30)")
    args = parser.parse_args(argv)
    try:
        if args.wait < 0 or args.max_seconds <= 0:
            raise QueryError(f"--wait must be >= 0 and --max-seconds > 0 (got {args.wait:g}, {args.max_seconds:g})")
        given = {}
        for item in args.param:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise QueryError(f"--param {item!r}: expected NAME=VALUE")
            given[name] = value
        sql = query_text(args.query)
        frame = run_query(
            sql,
            parameters(sql, given),
            args.db or default_duckdb_path(),
            wait_s=args.wait,
            max_seconds=args.max_seconds,
            lake=None if args.db else lake_from_environment(),
        )
    except (QueryError, WarehouseConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if frame is None:
        return 0
    if args.csv:
        sys.stdout.write(frame.write_csv())
    else:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
            print(frame)
    return 0
