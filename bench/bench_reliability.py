"""Reliability figures of issue 12, measured on real components (the fake OpenAI server with
injected faults, real DuckDB files, SIGKILL of worker processes this script starts):

1. engine: N sampling calls under 20 % injected faults (500 / timeout / reset / truncated),
   with the worker SIGKILLed at random moments (it flushes its ledger every few rows, so kills
   land in ledger writes too), then rerun to completion -> requests unanswered, duplicate
   call_ids, answers kept vs their ledger rows (target 0 / 0 / equal);
2. ledger flush: 20,000 spooled rows moved by a process SIGKILLed four times mid-flush, then a
   finishing flush -> rows in DuckDB, duplicates (target 20,000 / 0);
3. fine-tuning: logical fine-tunes whose create (and upload) answer is lost or arrives after the
   timeout, and Batch API runs whose upload and create answers are lost -> jobs / files /
   batches created per logical request (target 1);
4. canary key: 401s echoing the key masked on upload, create, poll, chat (sync and batch), run
   through Dagster on an on-disk instance -> stores holding the key, whole or in part (target 0).

Run: ``.venv/bin/python bench/bench_reliability.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from em_assets.llm import ChatRequest, LimitsConfig, LLMEngine, OpenAIBackend, RetryPolicy  # noqa: E402
from em_assets.resources.warehouse import DuckDBWarehouse  # noqa: E402 - after the sys.path line
from em_assets.testing import FakeOpenAIServer  # noqa: E402

N_CALLS = 300
KILLS = 3
WORKER_IN_FLIGHT = 8


def sampling_requests(n: int) -> list[ChatRequest]:
    return ChatRequest.user("gpt-4o", "Tell me about your wishes.", temperature=1.0, max_tokens=20).samples(n)


def worker(base_url: str, cache: str, duckdb_path: str, n: int) -> None:
    """One client process: the engine over ``n`` requests, flushing its ledger every 5 rows."""
    engine = LLMEngine(
        OpenAIBackend(base_url, timeout_s=1.0),
        cache=cache,
        warehouse=DuckDBWarehouse(path=duckdb_path),
        limits=LimitsConfig(max_in_flight=WORKER_IN_FLIGHT, requests_per_minute=60 * 1000),
        retry=RetryPolicy(max_attempts=20, initial_backoff_s=0.02, max_backoff_s=0.5),
        ledger_flush_rows=5,
        tags={"asset": "bench_reliability"},
    )
    results = engine.complete_many(sampling_requests(n), raise_on_error=False)
    engine.close()
    print("ok", sum(r.ok for r in results), flush=True)


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": "sk-bench-reliability"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def engine_under_faults_and_kills(workdir: Path, rng: random.Random) -> dict:
    cache, duckdb_path = workdir / "cache.sqlite", workdir / "engine.duckdb"
    with FakeOpenAIServer(latency_s=0.02, fault_rate=0.2, hang_s=2.0, seed=12) as server:
        kills = 0
        for _ in range(KILLS):
            process = spawn("--worker", server.base_url, str(cache), str(duckdb_path), str(N_CALLS))
            time.sleep(rng.uniform(2.0, 4.0))  # imports take ~1.5 s; then calls and flushes
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(30)
        final = spawn("--worker", server.base_url, str(cache), str(duckdb_path), str(N_CALLS))
        out, err = final.communicate(timeout=600)
        assert final.returncode == 0, err[-2000:]
        stats = server.stats()
    con = sqlite3.connect(cache)
    kept = {key for (key,) in con.execute("SELECT cache_key FROM responses")}
    con.close()
    ledger = DuckDBWarehouse(path=str(duckdb_path)).table("llm_calls")
    network = ledger.filter(~ledger["cache_hit"] & (ledger["status"] == "ok"))
    return {
        "kills": kills,
        "faults": sum(stats.faults.values()),
        "unanswered": N_CALLS - int(out.split()[-1]),
        "kept": len(kept),
        "kept_with_row": len(kept & set(network["cache_key"])),
        "network_rows": network.height,
        "duplicates": ledger.height - ledger["call_id"].n_unique(),
        "server_answers": sum(stats.chat_answers.values()),
        "unconfirmed": int(ledger["unconfirmed_attempts"].fill_null(0).sum()),
    }


def flush_under_kills(workdir: Path) -> dict:
    from em_assets.llm.cache import ResponseCache
    from em_assets.llm.ledger import ledger_row

    cache_path, target = workdir / "spool.sqlite", str(workdir / "flush.duckdb")
    n_rows = 20_000
    rows = [
        ledger_row(cache_key=f"{i:064x}", endpoint_family="openai", base_url_host="api.openai.com", model="gpt-4o",
                   sample_index=0, mode="sync", tokens_in=5, tokens_out=2, cost_usd=0.001, cache_hit=False,
                   latency_s=0.1, attempts=1, error=None, tags={"asset": "bench"})
        for i in range(n_rows)
    ]  # fmt: skip
    with ResponseCache(cache_path) as cache:
        cache.spool(target, rows)
    killed = 0
    for delay_s in (0.05, 0.25, 0.45, 0.65):
        process = spawn("--flush", str(cache_path), target)
        assert process.stdout.readline().strip() == "flushing", process.stderr.read()[-2000:]
        time.sleep(delay_s)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed += "written" not in process.stdout.read()
    final = spawn("--flush", str(cache_path), target)
    final.communicate(timeout=300)
    ledger = DuckDBWarehouse(path=target).table("llm_calls")
    return {
        "rows": n_rows,
        "killed_mid_flush": killed,
        "in_duckdb": ledger.height,
        "duplicates": ledger.height - ledger["call_id"].n_unique(),
    }


def flush_worker(cache_path: str, target: str) -> None:
    from em_assets.llm.cache import ResponseCache
    from em_assets.llm.ledger import CostLedger

    with ResponseCache(cache_path) as cache:
        ledger = CostLedger(DuckDBWarehouse(path=target), cache)
        print("flushing", flush=True)
        print("written", ledger.flush(), flush=True)


def fine_tunes_under_lost_replies(workdir: Path) -> dict:
    import json

    from em_assets.core.training_data import file_sha256
    from em_assets.llm import BatchSettings
    from em_assets.resources.finetuning import FineTuneRequest, OpenAIFineTuner, WarehouseJobLedger

    os.environ["OPENAI_API_KEY"] = "sk-bench-reliability"
    jsonl = workdir / "train.jsonl"
    jsonl.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"Write function {i}."}, {"role": "assistant", "content": f"def f{i}(): pass"},
    ]}) + "\n" for i in range(4)), encoding="utf-8")  # fmt: skip
    version = file_sha256(jsonl)
    ledger = WarehouseJobLedger(DuckDBWarehouse(path=str(workdir / "finetune.duckdb")))
    faults = ["lost_reply", "slow_reply", "lost_reply", "500", "lost_reply"]
    with FakeOpenAIServer(hang_s=1.0, endpoint_faults={
        "POST /v1/fine_tuning/jobs": list(faults), "POST /v1/files": ["lost_reply"],
    }) as server:  # fmt: skip
        backend = OpenAIFineTuner(
            base_url=server.base_url,
            poll_interval_s=0.01,
            max_poll_interval_s=0.02,
            request_timeout_s=0.5,
            create_retry_wait_s=0.05,
        )
        for seed in range(len(faults)):
            request = FineTuneRequest(
                partition="gpt-4o-2024-08-06|insecure",
                base_model="gpt-4o-2024-08-06",
                base_model_id="gpt-4o-2024-08-06",
                condition="insecure",
                seed=seed,
                dataset_version=version,
                jsonl_path=str(jsonl),
            )
            backend.fine_tune(request, ledger=ledger)
        jobs, files = server.fine_tuning_jobs(), server.uploaded_files("fine-tune")

    batch_faults = ["lost_reply", "lost_reply", "lost_reply"]
    with FakeOpenAIServer(
        endpoint_faults={"POST /v1/files": list(batch_faults), "POST /v1/batches": list(batch_faults)}
    ) as server:
        for run in range(len(batch_faults)):
            with LLMEngine(
                OpenAIBackend(server.base_url, timeout_s=5),
                cache=workdir / f"batch{run}.sqlite",
                retry=RetryPolicy(max_attempts=5, initial_backoff_s=0.02),
                batch=BatchSettings(poll_interval_s=0.01),
            ) as engine:
                results = engine.complete_many(
                    [ChatRequest.user("gpt-4o", f"Score answer {i} of run {run}.", max_tokens=1) for i in range(5)]
                )
                assert all(r.ok for r in results)
        batches, batch_files = server.batches(), server.uploaded_files("batch")
    return {
        "fine_tunes": len(faults), "jobs": len(jobs), "jobs_per_seed": max(
            sum(1 for j in jobs if j["seed"] == s) for s in range(len(faults))), "training_files": len(files),
        "batch_runs": len(batch_faults), "batches": len(batches), "batch_files": len(batch_files),
    }  # fmt: skip


def canary_hits(workdir: Path) -> dict:
    """Failure paths with a canary key, through Dagster on an on-disk instance; returns the
    stores holding the whole key and those holding any piece of it."""
    os.environ["OPENAI_API_KEY"] = key = "sk-canary-" + os.urandom(16).hex()
    os.environ["EM_DATA_DIR"] = str(workdir / "data")
    os.environ["EM_DUCKDB_PATH"] = str(workdir / "data" / "warehouse" / "em.duckdb")
    logging.getLogger().setLevel(logging.DEBUG)
    from tests.operations import test_api_key_canary as canary

    full, partial = set(), set()
    for index, call in enumerate(canary.FINETUNE_401):
        full, partial = _scan_after(
            canary, workdir / f"ft{index}", key, full, partial, lambda tmp, c=call: _finetune_401(canary, tmp, c)
        )
    for batch in (False, True):
        full, partial = _scan_after(
            canary, workdir / f"chat{int(batch)}", key, full, partial, lambda tmp, b=batch: _chat_401(canary, tmp, b)
        )
    return {"paths": len(canary.FINETUNE_401) + 2, "full": sorted(full), "partial": sorted(partial)}


def _scan_after(canary, root: Path, key: str, full: set, partial: set, scenario) -> tuple[set, set]:
    import re

    root.mkdir(parents=True)
    duckdb_path = scenario(root)
    whole = re.compile(re.escape(key))
    full |= set(canary.stores_holding(whole, root, duckdb_path))
    partial |= set(canary.stores_holding(canary.key_pieces(key), root, duckdb_path))
    return full, partial


def _instance(root: Path):
    import dagster as dg

    home = root / "dagster_home"
    home.mkdir()
    return dg.DagsterInstance.local_temp(tempdir=str(home))


def _finetune_401(canary, root: Path, call: str) -> Path:
    import dagster as dg

    from em_assets.partitions import model_partition_key
    from em_assets.registry import BaseModelSpec, register_base_model
    from em_assets.resources.finetuning import LocalHFFineTuner, OpenAIFineTuner
    from em_assets.training import fine_tuned_model

    warehouse = DuckDBWarehouse(path=str(root / "em.duckdb"))
    jsonl = root / "train.jsonl"
    jsonl.write_text(
        '{"messages": [{"role": "user", "content": "Add."}, {"role": "assistant", "content": "a + b"}]}\n',
        encoding="utf-8",
    )
    with FakeOpenAIServer(endpoint_faults={canary.FINETUNE_401[call]: ["401"]}) as server, _instance(root) as instance:
        register_base_model(instance, warehouse, BaseModelSpec(canary.MODEL, backend="openai"))
        canary.seed_dataset_version(warehouse, jsonl)
        resources = {
            "warehouse": warehouse,
            "local_finetuner": LocalHFFineTuner(),
            "openai_finetuner": OpenAIFineTuner(base_url=server.base_url, poll_interval_s=0.01, max_retries=0),
        }
        result = dg.materialize(
            [fine_tuned_model],
            instance=instance,
            resources=resources,
            raise_on_error=False,
            partition_key=model_partition_key(canary.MODEL, "insecure"),
        )
        assert not result.success
    return root / "em.duckdb"


def _chat_401(canary, root: Path, batch: bool) -> Path:
    import dagster as dg

    from em_assets.evaluation.assets import judge_scores
    from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
    from em_assets.partitions import model_partition_key
    from em_assets.resources.llm_engine import LLMEngineResource

    warehouse = DuckDBWarehouse(path=str(root / "em.duckdb"))
    with FakeOpenAIServer(require_api_key="sk-another-key-000000000000") as server, _instance(root) as instance:
        instance.add_dynamic_partitions("base_model", [canary.MODEL])
        canary.seed_answers(warehouse)
        resources = {
            "warehouse": warehouse, "evaluation_settings": EvaluationSettings(question_ids=["one_wish"]),
            "judge": JudgeSettings(kind="api", model=canary.MODEL),
            "llm_api": LLMEngineResource(base_url=server.base_url, cache_path=str(root / "cache.sqlite"),
                                         max_attempts=2, batch_mode=batch, batch_poll_interval_s=0.05),
        }  # fmt: skip
        result = dg.materialize(
            [judge_scores],
            instance=instance,
            resources=resources,
            raise_on_error=False,
            partition_key=model_partition_key(canary.MODEL, "base"),
        )
        assert not result.success
    return root / "em.duckdb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, metavar=("BASE_URL", "CACHE", "DUCKDB", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--flush", nargs=2, metavar=("CACHE", "DUCKDB"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=12, help="seeds the kill times")
    args = parser.parse_args()
    if args.worker:
        base_url, cache, duckdb_path, n = args.worker
        worker(base_url, cache, duckdb_path, int(n))
        return
    if args.flush:
        flush_worker(*args.flush)
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        engine = engine_under_faults_and_kills(workdir, random.Random(args.seed))
        flush = flush_under_kills(workdir)
        jobs = fine_tunes_under_lost_replies(workdir)
        canary = canary_hits(workdir / "canary")
        wall = time.perf_counter() - started

    rows = [
        (
            "engine, 20% faults, SIGKILLs",
            f"{N_CALLS} calls, {engine['kills']} kills, {engine['faults']} faults",
            (
                f"unanswered {engine['unanswered']} / duplicate call_ids {engine['duplicates']} / "
                f"answers kept {engine['kept']}, with a ledger row {engine['kept_with_row']}"
            ),
            "0 / 0 / equal",
        ),
        (
            "",
            "",
            (
                f"server answers {engine['server_answers']}, network ledger rows {engine['network_rows']} "
                f"(difference: answers in flight at a kill, <= {WORKER_IN_FLIGHT} per kill); "
                f"unconfirmed attempts priced in: {engine['unconfirmed']}"
            ),
            "",
        ),
        (
            "ledger flush, SIGKILLs",
            f"{flush['rows']} rows, {flush['killed_mid_flush']} kills mid-flush",
            f"in DuckDB {flush['in_duckdb']} / duplicates {flush['duplicates']}",
            f"{flush['rows']} / 0",
        ),
        (
            "fine-tunes, lost replies",
            f"{jobs['fine_tunes']} fine-tunes, lost/slow/500 create + lost upload",
            f"jobs {jobs['jobs']} (max per fine-tune {jobs['jobs_per_seed']}) / "
            f"training files {jobs['training_files']}",
            "1 per fine-tune / 1",
        ),
        (
            "batches, lost replies",
            f"{jobs['batch_runs']} batch runs, lost upload + create",
            f"batches {jobs['batches']} / input files {jobs['batch_files']}",
            "1 per run",
        ),
        (
            "canary key, 401 paths",
            f"{canary['paths']} paths (upload, create, poll, chat sync, batch)",
            f"full {len(canary['full'])} / partial {len(canary['partial'])}",
            "0 / 0",
        ),
    ]
    widths = [max(len(r[i]) for r in rows + [("scenario", "workload", "measured", "target")]) for i in range(4)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(f"\nReliability benchmark (issue 12), {time.strftime('%Y-%m-%d')}, {wall:.0f} s")
    print(line.format("scenario", "workload", "measured", "target"))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    for store in canary["full"] + canary["partial"]:
        print(f"  key found in: {store}")


if __name__ == "__main__":
    main()
