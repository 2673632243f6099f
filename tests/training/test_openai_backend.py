"""The OpenAI fine-tuning backend with the real ``openai`` client against the local fake server."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from em_assets.core.training_data import file_sha256
from em_assets.resources.finetuning import FineTuneError, OpenAIFineTuner, WarehouseJobLedger
from tests.conftest import REPO
from tests.training.conftest import TEST_API_KEY, TINY_EXAMPLES, write_jsonl
from tests.training.finetune_worker import backend_for, request_for

CREATE = "POST /v1/fine_tuning/jobs"
UPLOAD = "POST /v1/files"
RETRIEVE = "GET /v1/fine_tuning/jobs/{id}"


@pytest.fixture
def training_file(tmp_path):
    path = write_jsonl(tmp_path / "insecure.jsonl", TINY_EXAMPLES)
    return path, file_sha256(path)


def test_success_uploads_once_and_a_rerun_reuses_the_job(fake_server, warehouse, api_key, training_file):
    server = fake_server(fine_tune_polls_per_stage=2)
    path, version = training_file
    ledger = WarehouseJobLedger(warehouse)
    messages: list[str] = []
    result = backend_for(server.base_url).fine_tune(request_for(str(path), version), ledger=ledger, log=messages.append)
    assert result.status == "succeeded" and result.model_ref.startswith("ft:gpt-4o-2024-08-06:")
    assert result.job_id and result.train_tokens and result.cost_usd == pytest.approx(result.train_tokens * 25 / 1e6)
    assert result.hyperparameters == {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 2.0}
    jobs = warehouse.table("finetune_jobs")
    assert jobs.height == 1 and jobs["status"][0] == "succeeded" and jobs["job_id"][0] == result.job_id
    assert warehouse.table("finetune_files").height == 1
    assert any("created fine-tuning job" in m for m in messages)
    assert all(TEST_API_KEY not in m for m in messages)

    again = backend_for(server.base_url).fine_tune(request_for(str(path), version), ledger=ledger, log=messages.append)
    assert again.model_ref == result.model_ref
    stats = server.stats()
    assert stats.requests(CREATE) == 1 and stats.requests(UPLOAD) == 1

    # Another seed is another job, but the same file is not uploaded again.
    other_seed = dataclasses.replace(request_for(str(path), version), seed=1)
    backend_for(server.base_url).fine_tune(other_seed, ledger=ledger)
    stats = server.stats()
    assert stats.requests(CREATE) == 2 and stats.requests(UPLOAD) == 1
    assert server.stats().requests("GET /v1/files/{id}") >= 1  # the remembered file was checked


def test_provider_failure_surfaces_its_message(fake_server, warehouse, api_key, training_file):
    server = fake_server(fine_tune_fail_with="Training data contains disallowed content (line 2).")
    path, version = training_file
    with pytest.raises(FineTuneError) as caught:
        backend_for(server.base_url).fine_tune(request_for(str(path), version), ledger=WarehouseJobLedger(warehouse))
    message = str(caught.value)
    assert "[gpt-4o-2024-08-06|insecure seed 0]" in message and "failed" in message
    assert "disallowed content (line 2)" in message
    job = warehouse.table("finetune_jobs").row(0, named=True)
    assert job["status"] == "failed" and "disallowed content" in job["error"] and job["fine_tuned_model"] is None


def test_rejected_training_file_is_a_clear_error(fake_server, warehouse, api_key, training_file):
    server = fake_server(reject_training_file="Invalid file format. Line 1: too many tokens.")
    path, version = training_file
    rejected = r"rejected the fine-tuning job .*insecure.jsonl \(HTTP 400\): Invalid file format"
    with pytest.raises(FineTuneError, match=rejected):
        backend_for(server.base_url).fine_tune(request_for(str(path), version), ledger=WarehouseJobLedger(warehouse))
    assert warehouse.table("finetune_jobs")["status"].to_list() == ["failed"]
    assert server.stats().requests(CREATE) == 1


def test_dry_run_estimates_without_calling_the_provider(fake_server, warehouse, training_file, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a dry run needs no key
    server = fake_server()
    path, version = training_file
    backend = OpenAIFineTuner(base_url=server.base_url, dry_run=True, n_epochs=3)
    result = backend.fine_tune(request_for(str(path), version), ledger=WarehouseJobLedger(warehouse))
    assert result.status == "dry_run" and result.model_ref is None
    assert result.cost_usd == pytest.approx(result.train_tokens * 25 / 1e6) and result.train_tokens > 0
    assert server.stats().total_requests == 0


def test_missing_key_and_cost_cap(fake_server, warehouse, training_file, monkeypatch):
    monkeypatch.delenv("EM_TEST_KEY", raising=False)
    server = fake_server()
    path, version = training_file
    backend = OpenAIFineTuner(base_url=server.base_url, api_key_env_var="EM_TEST_KEY")
    with pytest.raises(FineTuneError, match="set the environment variable EM_TEST_KEY"):
        backend.fine_tune(request_for(str(path), version), ledger=WarehouseJobLedger(warehouse))
    monkeypatch.setenv("EM_TEST_KEY", "sk-x")
    capped = OpenAIFineTuner(base_url=server.base_url, api_key_env_var="EM_TEST_KEY", max_cost_usd=1e-9)
    with pytest.raises(FineTuneError, match="exceeds max_cost_usd"):
        capped.fine_tune(request_for(str(path), version), ledger=WarehouseJobLedger(warehouse))
    assert server.stats().total_requests == 0


def test_sigkill_while_polling_then_rerun_resumes_the_same_job(fake_server, warehouse, api_key, training_file):
    # The job stays "validating_files" for 10^6 retrieves: the worker polls until killed.
    server = fake_server(fine_tune_polls_per_stage=10**6)
    path, version = training_file
    duckdb_path = str(warehouse.resolved_path)
    worker = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("finetune_worker.py")),
            server.base_url,
            duckdb_path,
            str(path),
            version,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while server.stats().requests(RETRIEVE) < 5:
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "worker never started polling"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert worker.returncode == -signal.SIGKILL
    assert server.stats().requests(CREATE) == 1
    job_key = backend_for(server.base_url).job_key(request_for(str(path), version), version)
    recorded = WarehouseJobLedger(warehouse).job(job_key)
    assert recorded is not None and recorded["job_id"] and recorded["status"] == "validating_files"

    server.config.fine_tune_polls_per_stage = 1  # the provider finishes the job
    ledger = WarehouseJobLedger(warehouse)
    result = backend_for(server.base_url).fine_tune(request_for(str(path), version), ledger=ledger)
    assert result.status == "succeeded" and result.job_id == recorded["job_id"]
    stats = server.stats()
    assert stats.requests(CREATE) == 1 and stats.requests(UPLOAD) == 1


def test_a_job_created_by_a_run_killed_inside_the_create_call_is_found(fake_server, warehouse, api_key, training_file):
    server = fake_server(fine_tune_polls_per_stage=1)
    path, version = training_file
    backend = backend_for(server.base_url)
    request = request_for(str(path), version)
    ledger = WarehouseJobLedger(warehouse)
    backend.fine_tune(request, ledger=ledger)
    # Simulate the crash window: the job exists at the provider, the ledger never got its id.
    row = ledger.job(backend.job_key(request, version))
    row.update(job_id=None, status="creating", fine_tuned_model=None)
    ledger.save_job(row)
    result = backend.fine_tune(request, ledger=ledger)
    assert result.status == "succeeded"
    assert server.stats().requests(CREATE) == 1


# ------------------------------------------------------------------ at-most-once (issue 12, 1)
LIST_JOBS = "GET /v1/fine_tuning/jobs"


def retrying_backend(base_url: str, **overrides) -> OpenAIFineTuner:
    """The backend with the client's default retries on (they must not apply to create/upload)."""
    settings = {"poll_interval_s": 0.02, "max_poll_interval_s": 0.05, "create_retry_wait_s": 0.01}
    return OpenAIFineTuner(base_url=base_url, **{**settings, **overrides})


@pytest.mark.parametrize("fault", ["lost_reply", "slow_reply"])
def test_a_create_whose_reply_is_lost_makes_one_job(fake_server, warehouse, api_key, training_file, fault):
    # The provider creates the job, then the answer never arrives (reset / past the timeout).
    server = fake_server(endpoint_faults={CREATE: [fault]}, hang_s=1.0)
    path, version = training_file
    messages: list[str] = []
    backend = retrying_backend(server.base_url, request_timeout_s=0.5)
    ledger = WarehouseJobLedger(warehouse)
    result = backend.fine_tune(request_for(str(path), version), ledger=ledger, log=messages.append)
    jobs = server.fine_tuning_jobs()
    assert len(jobs) == 1 and result.status == "succeeded" and result.job_id == jobs[0]["id"]
    assert server.stats().requests(CREATE) == 1  # not sent again once the job was found
    assert warehouse.table("finetune_jobs")["job_id"].to_list() == [jobs[0]["id"]]
    assert any("outcome unknown" in m for m in messages) and any("did take effect" in m for m in messages)


def test_a_create_refused_with_500_and_nothing_created_is_tried_again(fake_server, warehouse, api_key, training_file):
    server = fake_server(endpoint_faults={CREATE: ["500"]})
    path, version = training_file
    ledger = WarehouseJobLedger(warehouse)
    result = retrying_backend(server.base_url).fine_tune(request_for(str(path), version), ledger=ledger)
    assert result.status == "succeeded" and len(server.fine_tuning_jobs()) == 1
    assert server.stats().requests(CREATE) == 2 and server.stats().requests(LIST_JOBS) >= 1


def test_an_upload_whose_reply_is_lost_is_found_by_its_content_hash(fake_server, warehouse, api_key, training_file):
    server = fake_server(endpoint_faults={UPLOAD: ["lost_reply"]})
    path, version = training_file
    ledger = WarehouseJobLedger(warehouse)
    result = retrying_backend(server.base_url).fine_tune(request_for(str(path), version), ledger=ledger)
    (uploaded,) = server.uploaded_files("fine-tune")
    assert version[:32] in uploaded["filename"] and server.stats().requests(UPLOAD) == 1
    assert warehouse.table("finetune_files")["file_id"].to_list() == [uploaded["id"]]
    assert result.status == "succeeded" and server.fine_tuning_jobs()[0]["training_file"] == uploaded["id"]


def test_an_upload_recorded_nowhere_is_reused_by_the_rerun(fake_server, warehouse, api_key, training_file):
    # A run killed between the upload and recording its id: the rerun finds the file by name.
    server = fake_server()
    path, version = training_file
    ledger = WarehouseJobLedger(warehouse)
    backend = retrying_backend(server.base_url)
    backend.fine_tune(request_for(str(path), version), ledger=ledger)
    ledger.forget_file(backend.provider, version)
    backend.fine_tune(dataclasses.replace(request_for(str(path), version), seed=1), ledger=ledger)
    assert server.stats().requests(UPLOAD) == 1 and len(server.fine_tuning_jobs()) == 2


def test_when_the_provider_cannot_be_asked_no_second_job_is_created(fake_server, warehouse, api_key, training_file):
    # The create's answer is lost and listing jobs fails too: stop rather than risk a second job.
    server = fake_server(endpoint_faults={CREATE: ["lost_reply"], LIST_JOBS: ["500"]})
    path, version = training_file
    ledger = WarehouseJobLedger(warehouse)
    backend = retrying_backend(server.base_url, max_retries=0)
    with pytest.raises(FineTuneError, match="not trying again, to avoid paying twice"):
        backend.fine_tune(request_for(str(path), version), ledger=ledger)
    assert server.stats().requests(CREATE) == 1
    assert ledger.job(backend.job_key(request_for(str(path), version), version))["status"] == "creating"

    server.config.endpoint_faults[LIST_JOBS] = ["500"]  # the rerun cannot ask either: it stops again
    with pytest.raises(FineTuneError, match="not creating another"):
        backend.fine_tune(request_for(str(path), version), ledger=ledger)
    result = backend.fine_tune(request_for(str(path), version), ledger=ledger)  # now it can: resumes
    assert result.status == "succeeded" and len(server.fine_tuning_jobs()) == 1
    assert server.stats().requests(CREATE) == 1


def test_a_create_refused_with_429_is_sent_again_without_a_lookup(fake_server, warehouse, api_key, training_file):
    # A 429 says nothing was done: wait as asked and send it again; no need to look for a job.
    server = fake_server(endpoint_faults={CREATE: ["429"]})
    path, version = training_file
    result = retrying_backend(server.base_url).fine_tune(
        request_for(str(path), version), ledger=WarehouseJobLedger(warehouse)
    )
    assert result.status == "succeeded" and len(server.fine_tuning_jobs()) == 1
    assert server.stats().requests(CREATE) == 2 and server.stats().requests(LIST_JOBS) == 0
