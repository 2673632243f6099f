"""Run one OpenAI-backend fine-tune in its own process (the kill-and-rerun test SIGKILLs it).

Usage: finetune_worker.py BASE_URL DUCKDB_PATH JSONL_PATH DATASET_VERSION
"""

from __future__ import annotations

import sys

from em_assets.resources.finetuning import FineTuneRequest, OpenAIFineTuner, WarehouseJobLedger
from em_assets.resources.warehouse import DuckDBWarehouse


def request_for(jsonl_path: str, dataset_version: str) -> FineTuneRequest:
    return FineTuneRequest(
        partition="gpt-4o-2024-08-06|insecure",
        base_model="gpt-4o-2024-08-06",
        base_model_id="gpt-4o-2024-08-06",
        condition="insecure",
        seed=0,
        dataset_version=dataset_version,
        jsonl_path=jsonl_path,
    )


def backend_for(base_url: str) -> OpenAIFineTuner:
    return OpenAIFineTuner(base_url=base_url, poll_interval_s=0.02, max_poll_interval_s=0.05, max_retries=0)


def main() -> None:
    base_url, duckdb_path, jsonl_path, version = sys.argv[1:5]
    ledger = WarehouseJobLedger(DuckDBWarehouse(path=duckdb_path))
    result = backend_for(base_url).fine_tune(request_for(jsonl_path, version), ledger=ledger, log=print)
    print("MODEL", result.model_ref, flush=True)


if __name__ == "__main__":
    main()
