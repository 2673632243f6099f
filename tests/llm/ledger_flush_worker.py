"""A process that moves the ledger spool of a cache file to DuckDB; the kill test SIGKILLs it
mid-write. Usage: ledger_flush_worker.py CACHE DUCKDB"""

from __future__ import annotations

import sys

from em_assets.llm.cache import ResponseCache
from em_assets.llm.ledger import CostLedger
from em_assets.resources.warehouse import DuckDBWarehouse

if __name__ == "__main__":
    cache_path, duckdb_path = sys.argv[1], sys.argv[2]
    with ResponseCache(cache_path) as cache:
        ledger = CostLedger(DuckDBWarehouse(path=duckdb_path), cache)
        print("flushing", flush=True)
        written = ledger.flush()
        print("written", written, flush=True)
