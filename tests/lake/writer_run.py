"""One Dagster run that writes the warehouse ``n`` times, started as its own process by the lake
tests: ``python -m tests.lake.writer_run TAG N START_FILE OUT_FILE``. The warehouse comes from the
environment (``EM_WAREHOUSE_BACKEND`` ...) exactly as the code location builds it. The run waits
for START_FILE so that several processes begin together, then replaces its own rows of
``filter_steps`` (a delete and an insert: concurrent ones conflict and are retried) and appends
one ``finetune_files`` row per write; OUT_FILE gets the start and end time of every write."""

import json
import sys
import time
from pathlib import Path

import dagster as dg

from em_assets.resources import warehouse_resource
from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.testing.warehouse_writes import write_once


def main(tag: str, n: int, start_file: Path, out_file: Path) -> int:
    @dg.asset(name=f"writes_{tag}")
    def writes(warehouse: DuckDBWarehouse) -> None:
        deadline = time.monotonic() + 60
        while not start_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        spans = []
        for i in range(n):
            began = time.time()
            write_once(warehouse, tag, i, rows=i + 1)
            spans.append((began, time.time()))
        out_file.write_text(json.dumps(spans))

    result = dg.materialize([writes], resources={"warehouse": warehouse_resource()}, raise_on_error=False)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])))
