"""The persistent response cache: SQLite in WAL mode, one row per completed call.

Each completed call is committed on its own as soon as it arrives, so a ``kill -9`` loses only
the calls in flight. WAL lets readers and one writer work at once and ``busy_timeout`` makes a
second process wait for the write lock instead of failing, so two processes can share the file.

The same file holds two small durable side tables: the ledger spool (every ledger row, those of
network calls written in the same transaction as their cache entry, moved to DuckDB in batches)
and the Batch API job records that let a crashed run resume its batch instead of submitting
another. The statements are this storage class's own, like the warehouse resource's.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from em_assets.llm.request import Completion
from em_assets.paths import data_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    cache_key        TEXT PRIMARY KEY,
    completion       TEXT NOT NULL,   -- Completion.to_json()
    request          TEXT NOT NULL,   -- the request body sent (no credentials), for audits
    endpoint_family  TEXT NOT NULL,
    model            TEXT NOT NULL,
    created_at       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_spool (
    call_id     TEXT PRIMARY KEY,
    target      TEXT NOT NULL,        -- the DuckDB file the row belongs in
    claim       TEXT,                 -- unused: flushes are idempotent (kept for older files)
    claimed_at  REAL,
    row         TEXT NOT NULL         -- JSON ledger row
);
CREATE INDEX IF NOT EXISTS ledger_spool_waiting ON ledger_spool (target, claim);
CREATE TABLE IF NOT EXISTS batch_jobs (
    batch_key      TEXT PRIMARY KEY,  -- ours, also sent as the batch's metadata
    endpoint       TEXT NOT NULL,     -- endpoint family and host
    status         TEXT NOT NULL,     -- preparing | uploaded | submitted | done | abandoned
    input_file_id  TEXT,
    batch_id       TEXT,
    members        TEXT NOT NULL,     -- JSON list of the cache keys in the batch
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);
"""
_CHUNK = 500  # SQLite's bound-parameter limit is 999 on old builds


def default_cache_path() -> Path:
    return data_dir() / "llm_cache" / "cache.sqlite"


@dataclass(frozen=True)
class BatchRecord:
    batch_key: str
    endpoint: str
    status: str
    input_file_id: str | None
    batch_id: str | None
    members: tuple[str, ...]
    created_at: float


class ResponseCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, used from the loop and the flush thread
        self._con = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a commit survives a killed process (not a power cut), without an fsync per call.
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute("PRAGMA busy_timeout=60000")
        with self._lock:
            self._con.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._con.close()  # closing twice is harmless

    @property
    def closed(self) -> bool:
        try:
            self._con.total_changes  # noqa: B018 - raises once closed
        except sqlite3.ProgrammingError:
            return True
        return False

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- responses
    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Completion] = {}
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._con.execute(
                    f"SELECT cache_key, completion FROM responses WHERE cache_key IN ({marks})", chunk
                ).fetchall()
                found.update((key, Completion.from_json(text)) for key, text in rows)
        return found

    def get(self, key: str) -> Completion | None:
        return self.get_many([key]).get(key)

    def __len__(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM responses").fetchone()[0])

    def put(
        self,
        key: str,
        completion: Completion,
        *,
        request: Mapping[str, Any],
        endpoint_family: str,
        model: str,
        ledger_row: Mapping[str, Any] | None = None,
        ledger_target: str | None = None,
        ledger_only_if_new: bool = False,
    ) -> bool:
        """Store one completed call (first writer wins) and, in the same transaction, its
        ledger row. Returns whether the entry was new."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._con.execute(
                    "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        completion.to_json(),
                        json.dumps(request, ensure_ascii=False),
                        endpoint_family,
                        model,
                        time.time(),
                    ),
                )
                inserted = cursor.rowcount == 1
                if ledger_row is not None and ledger_target is not None and (inserted or not ledger_only_if_new):
                    self._spool(ledger_target, [ledger_row])
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return inserted

    # ------------------------------------------------------------------------- ledger spool
    def _spool(self, target: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._con.executemany(
            "INSERT OR IGNORE INTO ledger_spool (call_id, target, row) VALUES (?, ?, ?)",
            [(row["call_id"], target, json.dumps(row, ensure_ascii=False)) for row in rows],
        )

    def spool(self, target: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        with self._lock, self._transaction():
            self._spool(target, rows)

    def spooled_rows(self, target: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows waiting for ``target``, oldest first. Rows are not reserved: two
        flushes may read the same rows, which is safe because the DuckDB insert skips call_ids
        it already has, and a row leaves the spool only after it is in DuckDB."""
        with self._lock:
            rows = self._con.execute(
                "SELECT row FROM ledger_spool WHERE target = ? ORDER BY rowid LIMIT ?", (target, limit)
            ).fetchall()
        return [json.loads(text) for (text,) in rows]

    def delete_spooled(self, call_ids: Sequence[str]) -> None:
        with self._lock, self._transaction():
            for start in range(0, len(call_ids), _CHUNK):
                chunk = list(call_ids[start : start + _CHUNK])
                self._con.execute(f"DELETE FROM ledger_spool WHERE call_id IN ({','.join('?' * len(chunk))})", chunk)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def spooled_count(self, target: str | None = None) -> int:
        with self._lock:
            if target is None:
                return int(self._con.execute("SELECT count(*) FROM ledger_spool").fetchone()[0])
            return int(self._con.execute("SELECT count(*) FROM ledger_spool WHERE target = ?", (target,)).fetchone()[0])

    # ---------------------------------------------------------------------------- batch jobs
    def create_batch_record(self, batch_key: str, endpoint: str, members: Sequence[str]) -> None:
        now = time.time()
        with self._lock:
            self._con.execute(
                "INSERT INTO batch_jobs VALUES (?, ?, 'preparing', NULL, NULL, ?, ?, ?)",
                (batch_key, endpoint, json.dumps(list(members)), now, now),
            )

    def update_batch_record(self, batch_key: str, **fields: Any) -> None:
        allowed = {"status", "input_file_id", "batch_id"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"batch record fields are {sorted(allowed)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._lock:
            self._con.execute(
                f"UPDATE batch_jobs SET {assignments}, updated_at = ? WHERE batch_key = ?",
                (*fields.values(), time.time(), batch_key),
            )

    def unfinished_batches(self, endpoint: str) -> list[BatchRecord]:
        with self._lock:
            rows = self._con.execute(
                "SELECT batch_key, endpoint, status, input_file_id, batch_id, members, created_at FROM batch_jobs "
                "WHERE endpoint = ? AND status NOT IN ('done', 'abandoned') ORDER BY created_at",
                (endpoint,),
            ).fetchall()
        return [
            BatchRecord(key, ep, status, file_id, batch_id, tuple(json.loads(members)), created)
            for key, ep, status, file_id, batch_id, members, created in rows
        ]

    def batch_record(self, batch_key: str) -> BatchRecord | None:
        with self._lock:
            row = self._con.execute(
                "SELECT batch_key, endpoint, status, input_file_id, batch_id, members, created_at FROM batch_jobs "
                "WHERE batch_key = ?",
                (batch_key,),
            ).fetchone()
        if row is None:
            return None
        key, ep, status, file_id, batch_id, members, created = row
        return BatchRecord(key, ep, status, file_id, batch_id, tuple(json.loads(members)), created)
