"""OpenAI fine-tuning API backend (and OpenAI-compatible providers through ``base_url``).

Paid and slow, so it is built to be resumable and to never start a job twice:

1. the training JSONL is uploaded once per (provider, content sha256); the file id is kept in
   DuckDB (``finetune_files``) and reused while the provider still has the file;
2. the job is identified by a ``job_key`` (provider, model, file hash, hyperparameters, seed,
   suffix). A ``creating`` row is written *before* the create call and the job id right
   after it, so a run killed while polling is resumed by its rerun; a run killed inside the
   create call is recovered by finding the job whose metadata carries the job_key;
3. polling backs off from ``poll_interval_s`` to ``max_poll_interval_s``; a failed or
   cancelled job raises with the provider's own error message.

Defaults are the paper's GPT-4o settings: 1 epoch, batch size 4, learning-rate multiplier 2.
The API key is read from the environment variable named by ``api_key_env_var`` when a call
is made; it is never a config value and never logged or stored.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from pydantic import Field

from em_assets.core.training_data import CostEstimate, TrainingDataError, estimate_training_cost, file_sha256
from em_assets.resources.finetuning.base import (
    PRICES_FILE,
    FineTuneError,
    FineTuneRequest,
    FineTuneResult,
    JobLedger,
    Log,
    canonical_json,
    load_price_table,
)

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
TERMINAL_FAILURES = ("failed", "cancelled")
RUNNING_STATES = ("creating", "validating_files", "queued", "running")
MAX_POLL_FAILURES = 10  # consecutive failed polls (after the client's own retries) before giving up


class OpenAIFineTuner(dg.ConfigurableResource):
    """Fine-tune through ``client.fine_tuning.jobs`` (``backend: openai``)."""

    base_url: str = Field(default="", description="empty: api.openai.com; else an OpenAI-compatible endpoint")
    api_key_env_var: str = Field(default="OPENAI_API_KEY", description="NAME of the env var holding the key")
    n_epochs: int = 1
    batch_size: int = 4
    learning_rate_multiplier: float = 2.0
    suffix: str = Field(default="em", description="prefix of the fine-tuned model's suffix")
    poll_interval_s: float = 15.0
    max_poll_interval_s: float = 120.0
    poll_backoff: float = 1.5
    max_wait_s: float = Field(default=48 * 3600.0, description="give up polling (the job keeps running; a rerun resumes it)")
    request_timeout_s: float = 60.0
    max_retries: int = 5
    dry_run: bool = Field(default=False, description="estimate the cost and stop: no upload, no job")
    max_cost_usd: float = Field(default=0.0, description="refuse jobs whose estimate exceeds this (0 = no cap)")
    prices_file: str = Field(default="", description="price YAML (default: em_assets/data/finetune_prices.yaml)")

    backend_name: ClassVar[str] = "openai"

    # ----------------------------------------------------------------------------- plumbing
    @property
    def provider(self) -> str:
        return (self.base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/")

    def client(self) -> Any:
        from openai import OpenAI

        key = os.environ.get(self.api_key_env_var)
        if not key:
            raise FineTuneError(
                f"no API key: set the environment variable {self.api_key_env_var} "
                f"(the OpenAI backend reads it at call time)"
            )
        return OpenAI(
            api_key=key,
            base_url=self.base_url or None,
            timeout=self.request_timeout_s,
            max_retries=self.max_retries,
        )

    def describe_hyperparameters(self) -> dict[str, Any]:
        return {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }

    def prices(self) -> dict[str, float]:
        return load_price_table(self.prices_file or PRICES_FILE)

    def estimate(self, request: FineTuneRequest) -> CostEstimate:
        """Dry-run cost: approximate tokens of the JSONL x epochs x the model's training price."""
        try:
            return estimate_training_cost(request.jsonl_path, request.base_model_id, self.n_epochs, self.prices())
        except TrainingDataError as exc:
            raise FineTuneError(f"{request.label} {exc}") from exc

    def job_key(self, request: FineTuneRequest, file_hash: str) -> str:
        identity = {
            "provider": self.provider,
            "model": request.base_model_id,
            "training_file_sha256": file_hash,
            "hyperparameters": self.describe_hyperparameters(),
            "seed": request.seed,
            "suffix": self._suffix(request),
        }
        return hashlib.sha256(canonical_json(identity).encode()).hexdigest()

    def _suffix(self, request: FineTuneRequest) -> str:
        return f"{self.suffix}-{request.condition}-s{request.seed}"[:64]

    # ----------------------------------------------------------------------------- the job
    def fine_tune(
        self,
        request: FineTuneRequest,
        *,
        ledger: JobLedger | None = None,
        on_progress: Callable[[Any], None] | None = None,
        log: Log | None = None,
    ) -> FineTuneResult:
        say = log or (lambda message: None)
        estimate = self.estimate(request)
        hyper = self.describe_hyperparameters()
        usd = estimate.usd
        say(
            f"{request.label} estimate: {estimate.n_examples} examples, ~{estimate.billed_tokens} billed tokens"
            + (f", ~${usd:.2f}" if usd is not None else " (no price known)")
        )
        if self.dry_run:
            return FineTuneResult(
                model_ref=None, status="dry_run", method="api", hyperparameters=hyper, cost_usd=usd,
                train_tokens=estimate.billed_tokens,
                details={"estimate_notes": estimate.notes, "price_key": estimate.price_key},
            )
        if self.max_cost_usd and usd is not None and usd > self.max_cost_usd:
            raise FineTuneError(
                f"{request.label} estimated cost ${usd:.2f} exceeds max_cost_usd ${self.max_cost_usd:.2f}; "
                "raise the cap to proceed"
            )
        if ledger is None:
            raise FineTuneError(f"{request.label} the OpenAI backend needs a job ledger (DuckDB) to be resumable")
        client = self.client()
        file_hash = file_sha256(request.jsonl_path)
        key = self.job_key(request, file_hash)

        row = ledger.job(key)
        job_id = row["job_id"] if row else None
        if row and row["status"] == "succeeded" and row["fine_tuned_model"]:
            say(f"{request.label} job {job_id} already succeeded: {row['fine_tuned_model']} (no new job)")
            return self._result(request, row, hyper, usd, estimate)
        if row and row["status"] in TERMINAL_FAILURES:
            say(f"{request.label} previous job {job_id} ended {row['status']}; starting a new one")
            row, job_id = None, None
        if row and job_id is None:
            # Killed inside the create call last time: the job may exist without our knowing.
            job_id = self._find_job_by_key(client, key)
            if job_id:
                say(f"{request.label} found job {job_id} created by an interrupted run; resuming")
                row.update(job_id=job_id, status="validating_files")
                ledger.save_job(row)

        if job_id is None:
            file_id = self._upload_once(client, ledger, request, file_hash, say)
            row = {
                "job_key": key, "provider": self.provider, "job_id": None, "base_model": request.base_model,
                "condition": request.condition, "seed": request.seed, "model_id": request.base_model_id,
                "training_file_id": file_id, "dataset_version": request.dataset_version,
                "hyperparameters": canonical_json(hyper), "status": "creating", "fine_tuned_model": None,
                "trained_tokens": None, "error": None, "created_at": None,
            }
            ledger.save_job(row)  # before the call: a crash inside it is recoverable (above)
            job = self._create_job(client, request, file_id, key, hyper, row, ledger)
            job_id = job.id
            row.update(job_id=job_id, status=job.status)
            ledger.save_job(row)
            say(f"{request.label} created fine-tuning job {job_id} ({job.status})")
        else:
            say(f"{request.label} resuming fine-tuning job {job_id}")

        assert row is not None
        job = self._poll(client, request, job_id, row, ledger, say)
        row.update(status="succeeded", fine_tuned_model=job.fine_tuned_model, trained_tokens=job.trained_tokens, error=None)
        ledger.save_job(row)
        say(f"{request.label} job {job_id} succeeded: {job.fine_tuned_model}")
        seconds = float(job.finished_at - job.created_at) if job.finished_at and job.created_at else None
        return self._result(request, row, hyper, usd, estimate, seconds)

    def _result(
        self, request: FineTuneRequest, row: dict[str, Any], hyper: dict[str, Any], usd: float | None,
        estimate: CostEstimate, seconds: float | None = None,
    ) -> FineTuneResult:
        """The result of a succeeded job; cost from the trained tokens the provider reports when
        it does (else the estimate), seconds from the provider's timestamps (else the ledger's)."""
        trained = row.get("trained_tokens")
        cost = usd
        if trained and estimate.usd_per_million is not None:
            cost = trained * estimate.usd_per_million / 1_000_000
        if seconds is None and row.get("created_at") is not None and row.get("updated_at") is not None:
            seconds = (row["updated_at"] - row["created_at"]).total_seconds()
        return FineTuneResult(
            model_ref=row["fine_tuned_model"], status="succeeded", method="api", hyperparameters=hyper,
            job_id=row["job_id"], train_tokens=trained, cost_usd=cost, train_seconds=seconds,
            details={"provider": self.provider, "training_file_id": row["training_file_id"]},
        )

    def _upload_once(self, client: Any, ledger: JobLedger, request: FineTuneRequest, file_hash: str, say: Log) -> str:
        import openai

        known = ledger.file_id(self.provider, file_hash)
        if known:
            try:
                client.files.retrieve(known)
                say(f"{request.label} reusing uploaded file {known}")
                return known
            except openai.NotFoundError:
                ledger.forget_file(self.provider, file_hash)  # deleted at the provider: upload again
        path = Path(request.jsonl_path)
        try:
            with path.open("rb") as handle:
                uploaded = client.files.create(file=(path.name, handle), purpose="fine-tune")
        except openai.APIStatusError as exc:
            raise FineTuneError(f"{request.label} the provider rejected the upload of {path}: {_api_message(exc)}") from exc
        ledger.remember_file(self.provider, file_hash, uploaded.id, path.name, path.stat().st_size)
        say(f"{request.label} uploaded {path.name} as {uploaded.id}")
        return uploaded.id

    def _create_job(
        self, client: Any, request: FineTuneRequest, file_id: str, key: str, hyper: dict[str, Any],
        row: dict[str, Any], ledger: JobLedger,
    ) -> Any:
        import openai

        try:
            return client.fine_tuning.jobs.create(
                model=request.base_model_id,
                training_file=file_id,
                method={"type": "supervised", "supervised": {"hyperparameters": hyper}},
                seed=request.seed,
                suffix=self._suffix(request),
                metadata={"em_job_key": key, "em_partition": request.partition[:500], "em_seed": str(request.seed)},
            )
        except openai.APIStatusError as exc:
            message = _api_message(exc)
            row.update(status="failed", error=f"rejected ({exc.status_code}): {message}")
            ledger.save_job(row)
            raise FineTuneError(
                f"{request.label} the provider rejected the fine-tuning job for {request.jsonl_path} "
                f"(HTTP {exc.status_code}): {message}"
            ) from exc

    def _find_job_by_key(self, client: Any, key: str) -> str | None:
        try:
            for index, job in enumerate(client.fine_tuning.jobs.list(limit=100)):
                if (job.metadata or {}).get("em_job_key") == key and job.status not in TERMINAL_FAILURES:
                    return job.id
                if index >= 500:
                    break
        except Exception:  # listing is a best effort; providers without metadata just create anew
            return None
        return None

    def _poll(self, client: Any, request: FineTuneRequest, job_id: str, row: dict[str, Any], ledger: JobLedger, say: Log) -> Any:
        import openai

        interval = self.poll_interval_s
        started = time.monotonic()
        last_status = row.get("status")
        failures = 0
        while True:
            try:
                job = client.fine_tuning.jobs.retrieve(job_id)
                failures = 0
            except openai.NotFoundError as exc:
                row.update(status="failed", error=f"job not found: {_api_message(exc)}")
                ledger.save_job(row)
                raise FineTuneError(f"{request.label} fine-tuning job {job_id} no longer exists at {self.provider}") from exc
            except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError) as exc:
                # The client already retried; the job runs on regardless, so keep polling a while.
                failures += 1
                if failures > MAX_POLL_FAILURES:
                    raise FineTuneError(
                        f"{request.label} cannot reach {self.provider} to poll job {job_id} ({exc}); "
                        "the job keeps running there and a rerun resumes it"
                    ) from exc
                say(f"{request.label} polling job {job_id} failed ({type(exc).__name__}); retrying")
                time.sleep(interval)
                interval = min(interval * self.poll_backoff, self.max_poll_interval_s)
                continue
            if job.status != last_status:
                say(f"{request.label} job {job_id}: {last_status} -> {job.status}")
                last_status = job.status
                if job.status not in ("succeeded", *TERMINAL_FAILURES):
                    row.update(status=job.status)
                    ledger.save_job(row)
            if job.status == "succeeded":
                if not job.fine_tuned_model:
                    raise FineTuneError(f"{request.label} job {job_id} succeeded without a fine_tuned_model")
                return job
            if job.status in TERMINAL_FAILURES:
                message = self._failure_message(client, job)
                row.update(status=job.status, error=message)
                ledger.save_job(row)
                raise FineTuneError(f"{request.label} fine-tuning job {job_id} {job.status}: {message}")
            if time.monotonic() - started > self.max_wait_s:
                raise FineTuneError(
                    f"{request.label} job {job_id} still {job.status} after {self.max_wait_s:.0f} s; "
                    "it keeps running at the provider and a rerun resumes it"
                )
            time.sleep(interval)
            interval = min(interval * self.poll_backoff, self.max_poll_interval_s)

    @staticmethod
    def _failure_message(client: Any, job: Any) -> str:
        error = getattr(job, "error", None)
        parts = [getattr(error, "code", None), getattr(error, "message", None)] if error else []
        message = ": ".join(p for p in parts if p)
        if message:
            return message
        try:  # no structured error: the newest error-level event says why
            for event in client.fine_tuning.jobs.list_events(job.id, limit=20):
                if event.level == "error":
                    return event.message
        except Exception:
            pass
        return "no error message from the provider"

    # --------------------------------------------------------------------------- answering
    def answer(self, model_ref: str, prompt: str, *, max_new_tokens: int = 200) -> str:
        response = self.client().chat.completions.create(
            model=model_ref,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_new_tokens,
            temperature=0,
        )
        return response.choices[0].message.content or ""


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return getattr(exc, "message", None) or str(exc)
