"""The cost ledger: one ``llm_calls`` row per call the engine answers, cached or not.

Rows wait in the cache's SQLite file (the spool) until DuckDB has them: a network call's row
is written in the same transaction as its cache entry (a crash cannot lose what was paid for), a
failure's row as soon as it is noted. A cache hit costs nothing and a warm rerun notes thousands
at once, so its row waits in memory and is spooled only if its flush fails (a kill before that
flush loses hit rows, never a paid call's). Rows move to DuckDB in batches (DuckDB has one writer
process per file, so one insert per batch, not one transaction per call). The move is
idempotent: DuckDB inserts only call_ids it does not have, in one transaction, and a row
leaves the spool only after that commit. So a flush killed at any point, or two flushes
racing, neither lose a row nor write one twice; the next flush finishes the job.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from em_assets.llm.cache import ResponseCache
    from em_assets.resources.warehouse import DuckDBWarehouse

log = logging.getLogger(__name__)

LEDGER_TABLE = "llm_calls"
# Tags with a column of their own; any other tag goes into the JSON ``tags`` column.
TAG_COLUMNS = ("asset", "partition_key", "run_id")
LEDGER_SCHEMA: dict[str, pl.DataType] = {
    "call_id": pl.String(),
    "cache_key": pl.String(),
    "endpoint_family": pl.String(),
    "base_url_host": pl.String(),
    "model": pl.String(),
    "sample_index": pl.Int32(),
    "mode": pl.String(),
    "tokens_in": pl.Int64(),
    "tokens_out": pl.Int64(),
    "cost_usd": pl.Float64(),
    "unconfirmed_attempts": pl.Int32(),
    "unconfirmed_cost_usd": pl.Float64(),
    "cache_hit": pl.Boolean(),
    "latency_s": pl.Float64(),
    "attempts": pl.Int32(),
    "status": pl.String(),
    "error": pl.String(),
    "asset": pl.String(),
    "partition_key": pl.String(),
    "run_id": pl.String(),
    "tags": pl.String(),
    "created_at": pl.Datetime("us"),
}


def ledger_row(
    *,
    cache_key: str,
    endpoint_family: str,
    base_url_host: str | None,
    model: str,
    sample_index: int,
    mode: str,
    tokens_in: int,
    tokens_out: int,
    cost_usd: float | None,
    cache_hit: bool,
    latency_s: float | None,
    attempts: int,
    error: str | None,
    tags: Mapping[str, Any],
    unconfirmed_attempts: int = 0,
    unconfirmed_cost_usd: float | None = 0.0,
) -> dict[str, Any]:
    """A JSON-serializable ledger row (``created_at`` as epoch seconds until written)."""
    tags = dict(tags)
    columns = {name: (None if tags.get(name) is None else str(tags.pop(name))) for name in TAG_COLUMNS}
    for name in TAG_COLUMNS:
        tags.pop(name, None)
    return {
        "call_id": uuid.uuid4().hex,
        "cache_key": cache_key,
        "endpoint_family": endpoint_family,
        "base_url_host": base_url_host,
        "model": model,
        "sample_index": sample_index,
        "mode": mode,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": cost_usd,
        "unconfirmed_attempts": unconfirmed_attempts,
        "unconfirmed_cost_usd": unconfirmed_cost_usd,
        "cache_hit": cache_hit,
        "latency_s": latency_s,
        "attempts": attempts,
        "status": "ok" if error is None else "error",
        "error": error,
        **columns,
        "tags": json.dumps(tags, sort_keys=True, default=str) if tags else None,
        "created_at": time.time(),
    }


def rows_to_frame(rows: list[Mapping[str, Any]]) -> pl.DataFrame:
    # Every column by name: rows spooled by an older version lack the newer ones (they are null).
    records = [
        {
            **{name: row.get(name) for name in LEDGER_SCHEMA},
            "created_at": datetime.fromtimestamp(row["created_at"], UTC).replace(tzinfo=None),
        }
        for row in rows
    ]
    return pl.DataFrame(records, schema=LEDGER_SCHEMA, orient="row") if records else pl.DataFrame(schema=LEDGER_SCHEMA)


@dataclass
class CallSummary:
    """Totals for a set of calls; ``as_metadata()`` is ready for Dagster output metadata."""

    calls: int = 0
    cache_hits: int = 0
    failed: int = 0
    attempts: int = 0  # network attempts, retries included
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0  # an upper bound: includes the estimate for unconfirmed attempts
    unpriced_calls: int = 0  # network calls of a model missing from prices.yaml
    unconfirmed_attempts: int = 0  # timed out / answer lost: maybe done and billed by the provider
    unconfirmed_cost_usd: float = 0.0

    @property
    def network_calls(self) -> int:
        return self.calls - self.cache_hits

    def add(self, row: Mapping[str, Any]) -> None:
        self.calls += 1
        self.cache_hits += bool(row["cache_hit"])
        self.failed += row["status"] != "ok"
        self.attempts += int(row["attempts"] or 0)
        self.tokens_in += int(row["tokens_in"] or 0)
        self.tokens_out += int(row["tokens_out"] or 0)
        self.unconfirmed_attempts += int(row.get("unconfirmed_attempts") or 0)
        self.unconfirmed_cost_usd += float(row.get("unconfirmed_cost_usd") or 0.0)
        if row["cost_usd"] is None:
            self.unpriced_calls += not row["cache_hit"] and row["status"] == "ok"
        else:
            self.cost_usd += float(row["cost_usd"])

    def as_metadata(self) -> dict[str, int | float]:
        return {
            "llm_calls": self.calls,
            "llm_cache_hits": self.cache_hits,
            "llm_network_calls": self.network_calls,
            "llm_failed": self.failed,
            "llm_attempts": self.attempts,
            "llm_tokens_in": self.tokens_in,
            "llm_tokens_out": self.tokens_out,
            "llm_cost_usd": round(self.cost_usd, 6),
            "llm_unpriced_calls": self.unpriced_calls,
            "llm_unconfirmed_attempts": self.unconfirmed_attempts,
            "llm_cost_unconfirmed_usd": round(self.unconfirmed_cost_usd, 6),
        }


# Spooled rows moved per DuckDB transaction: bounds memory when a long crashed history waits.
FLUSH_CHUNK_ROWS = 5000


def insert_new_rows(warehouse: DuckDBWarehouse, frame: pl.DataFrame) -> int:
    """Insert the rows of ``frame`` whose call_id ``llm_calls`` does not have yet, in one
    transaction; returns how many were new. Replaying the same rows is a no-op."""
    if not frame.height:
        return 0
    with warehouse.connect() as con:
        con.register("_em_ledger_rows", frame.to_arrow())
        try:
            con.execute("BEGIN TRANSACTION")
            (inserted,) = con.execute(
                f"INSERT INTO {LEDGER_TABLE} BY NAME "
                "SELECT * FROM _em_ledger_rows AS new "
                f"WHERE NOT EXISTS (SELECT 1 FROM {LEDGER_TABLE} AS old WHERE old.call_id = new.call_id) "
                "QUALIFY row_number() OVER (PARTITION BY new.call_id) = 1"
            ).fetchone()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_em_ledger_rows")
    return int(inserted)


class CostLedger:
    """Collects ledger rows and moves them to the warehouse's ``llm_calls`` in batches.

    Without a warehouse it only keeps the :class:`CallSummary`; without a cache (no spool) rows
    wait in memory until the flush.
    """

    def __init__(
        self,
        warehouse: DuckDBWarehouse | None,
        cache: ResponseCache | None,
        *,
        flush_rows: int = 1000,
        flush_interval_s: float = 30.0,
    ) -> None:
        self.warehouse = warehouse
        self.cache = cache
        self.target = warehouse.target if warehouse is not None else None
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.summary = CallSummary()
        self.rows_written = 0
        self._memory: list[dict[str, Any]] = []  # cache hits, and every row when there is no spool
        self._since_flush = 0
        self._last_flush = time.monotonic()
        self._flush_lock = threading.Lock()
        self._memory_lock = threading.Lock()

    @property
    def spool_target(self) -> str | None:
        """Where spooled rows go; None when rows cannot be spooled (no warehouse or no cache)."""
        return self.target if self._spool() is not None else None

    def _spool(self) -> ResponseCache | None:
        return self.cache if self.target is not None and self.cache is not None and not self.cache.closed else None

    def note(self, row: dict[str, Any], *, spooled: bool) -> None:
        """Count a row and keep it for the next flush: a failure's row is spooled at once (its
        attempts may have been billed); a cache hit's waits in memory (thousands arrive at once
        on a warm rerun) and is spooled only if that flush fails."""
        self.summary.add(row)
        if self.target is None:
            return
        spool = None if spooled or row["cache_hit"] else self._spool()
        if spool is not None:
            spool.spool(self.target, [row])
        with self._memory_lock:
            if not spooled and spool is None:
                self._memory.append(row)
            self._since_flush += 1

    def flush_due(self) -> bool:
        if self.target is None:
            return False
        return self._since_flush >= self.flush_rows or (
            self._since_flush > 0 and time.monotonic() - self._last_flush >= self.flush_interval_s
        )

    def waiting(self) -> int:
        """Rows not yet in DuckDB: in the spool (any run's) or in memory."""
        spool = self._spool()
        with self._memory_lock:
            in_memory = len(self._memory)
        return in_memory + (spool.spooled_count(self.target) if spool is not None and self.target else 0)

    def flush(self) -> int:
        """Write every waiting row (this process's and any a killed run left in the spool) to
        DuckDB. On failure the rows stay waiting, durable in the spool, for the next flush;
        returns the rows newly written."""
        if self.warehouse is None or self.target is None:
            return 0
        with self._flush_lock:
            with self._memory_lock:
                memory, self._memory = self._memory, []
                self._since_flush = 0
                self._last_flush = time.monotonic()
            written = 0
            spool = self._spool()
            try:
                if memory:
                    try:
                        written += insert_new_rows(self.warehouse, rows_to_frame(memory))
                    except Exception:
                        if spool is not None:  # durable now: the next flush, of any run, writes them
                            spool.spool(self.target, memory)
                            memory = []
                        raise
                    memory = []
                while spool is not None:
                    rows = spool.spooled_rows(self.target, FLUSH_CHUNK_ROWS)
                    if not rows:
                        break
                    written += insert_new_rows(self.warehouse, rows_to_frame(rows))
                    spool.delete_spooled([row["call_id"] for row in rows])  # only once they are in DuckDB
            except Exception as exc:
                with self._memory_lock:
                    self._memory[:0] = memory
                where = f"the spool {spool.path}" if spool is not None else "memory"
                log.warning(
                    "LLM ledger flush to %s failed (%s); %d row(s) wait in %s for the next flush",
                    self.target,
                    type(exc).__name__,
                    self.waiting(),
                    where,
                )
            self.rows_written += written
            return written


def cost_by_asset(warehouse: DuckDBWarehouse, run_id: str | None = None) -> pl.DataFrame:
    """Calls, tokens and estimated cost per asset and partition (``sql/queries/llm_cost_by_asset.sql``),
    for one run or, with ``run_id=None``, for all."""
    return warehouse.query_file("queries/llm_cost_by_asset.sql", {"run_id": run_id})
