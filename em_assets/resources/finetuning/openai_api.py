"""OpenAI fine-tuning API backend (and OpenAI-compatible providers through ``base_url``).

Paid and slow, so it is built to be resumable and to never start a job twice:

1. the training JSONL is uploaded once per (provider, content sha256): its name at the
   provider carries the hash, the file id is kept in DuckDB (``finetune_files``) and reused
   while the provider still has the file, and a file uploaded by a run that never recorded it
   is found by that name;
2. the job is identified by a ``job_key`` (provider, model, file hash, hyperparameters, seed,
   suffix). A ``creating`` row is written *before* the create call and the job id right
   after it, so a run killed while polling is resumed by its rerun; a run killed inside the
   create call is recovered by finding the job whose metadata carries the job_key;
3. the create and upload calls are never retried blindly (the client's own retries are off for
   them): after an uncertain outcome (connection lost, timeout, 5xx) the job is looked up by
   its job_key (the file by its name) and created again only when the provider has none. When
   the provider cannot be asked, the run stops with the row left ``creating`` and the rerun
   asks again, rather than risk paying for a second job;
4. polling backs off from ``poll_interval_s`` to ``max_poll_interval_s``; a failed or
   cancelled job raises with the provider's own error message.

Defaults are the paper's GPT-4o settings: 1 epoch, batch size 4, learning-rate multiplier 2;
the ``fine_tuned_model`` asset hands each condition a copy with the paper's values for that
condition (``em_assets/training/condition_defaults.py``).
The API key is read from the environment variable named by ``api_key_env_var`` when a call
is made; it is never a config value and never logged or stored. Every provider error is
redacted (a 401 echoes the key masked) before it is logged, raised or written to DuckDB.
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
from em_assets.llm.rate_limiter import parse_retry_after
from em_assets.redaction import (
    describe_provider_error,
    provider_errors_redacted,
    provider_message,
    redact,
    redacting,
)
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
MAX_POLL_FAILURES = 10  # consecutive failed polls (after the client's own retries) before giving up
MAX_LISTED = 500  # jobs / files looked through when searching for one of ours


class UncertainOutcome(Exception):
    """A create or upload call whose effect at the provider is unknown (reply lost)."""


class RateLimited(Exception):
    """A create or upload refused with 429: nothing was done, it may be sent again later."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OpenAIFineTuner(dg.ConfigurableResource):
    """Fine-tune through ``client.fine_tuning.jobs`` (``backend: openai``)."""

    base_url: str = Field(default="", description="empty: api.openai.com; else an OpenAI-compatible endpoint")
    api_key_env_var: str = Field(default="OPENAI_API_KEY", description="NAME of the env var holding the key")
    n_epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=4, ge=1)
    learning_rate_multiplier: float = Field(default=2.0, gt=0.0, allow_inf_nan=False)
    suffix: str = Field(default="em", description="prefix of the fine-tuned model's suffix")
    poll_interval_s: float = Field(default=15.0, gt=0.0)
    max_poll_interval_s: float = Field(default=120.0, gt=0.0)
    poll_backoff: float = Field(default=1.5, ge=1.0)
    max_wait_s: float = Field(
        default=48 * 3600.0, description="give up polling (the job keeps running; a rerun resumes it)"
    )
    request_timeout_s: float = Field(default=60.0, gt=0.0)
    max_retries: int = Field(
        default=5, ge=0, description="client retries of reads (polls, lists); never of create/upload"
    )
    create_attempts: int = Field(
        default=3,
        ge=1,
        description="tries of a create/upload whose reply was lost, each after checking it did not happen",
    )
    create_retry_wait_s: float = Field(
        default=5.0, ge=0.0, description="wait before checking a lost create (provider lag)"
    )
    dry_run: bool = Field(default=False, description="estimate the cost and stop: no upload, no job")
    max_cost_usd: float = Field(default=0.0, ge=0.0, description="refuse jobs whose estimate exceeds this (0 = no cap)")
    prices_file: str = Field(default="", description="price YAML (default: em_assets/data/finetune_prices.yaml)")
    # Per condition (em_assets/training/condition_defaults.py): the paper's values for the fields
    # this config leaves unset (backdoor batch 8, jailbroken 5 epochs, evil numbers 4 epochs at
    # batch 39), then these overrides, e.g. {"evil_numbers": {"n_epochs": 3}}.
    paper_condition_defaults: bool = Field(default=True, description="the paper's per-condition epochs and batch")
    condition_overrides: dict[str, dict[str, Any]] = Field(
        default={}, description="condition -> {n_epochs, batch_size, learning_rate_multiplier}"
    )

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

    def describe_hyperparameters(self, base_model_id: str = "") -> dict[str, Any]:
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
        with provider_errors_redacted(lambda line: FineTuneError(f"{request.label} {line}"), self._secrets()):
            return self._fine_tune(request, ledger, redacting(log))

    def _secrets(self) -> tuple[str, ...]:
        key = os.environ.get(self.api_key_env_var, "")
        return (key,) if key else ()

    def _fine_tune(self, request: FineTuneRequest, ledger: JobLedger | None, say: Log) -> FineTuneResult:
        estimate = self.estimate(request)
        hyper = self.describe_hyperparameters()
        usd = estimate.usd
        say(
            f"{request.label} estimate: {estimate.n_examples} examples, ~{estimate.billed_tokens} billed tokens"
            + (f", ~${usd:.2f}" if usd is not None else " (no price known)")
        )
        if self.dry_run:
            return FineTuneResult(
                model_ref=None,
                status="dry_run",
                method="api",
                hyperparameters=hyper,
                cost_usd=usd,
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
            try:
                found = self._find_job(client, request, key, row["training_file_id"])
            except UncertainOutcome as exc:
                raise FineTuneError(
                    f"{request.label} an earlier run was interrupted while creating job {key[:12]} and the provider "
                    f"cannot be asked whether it exists ({exc}); not creating another. Try again later"
                ) from None
            if found is not None:
                job_id = found.id
                say(f"{request.label} found job {job_id} created by an interrupted run; resuming")
                row.update(job_id=job_id, status=found.status)
                ledger.save_job(row)

        if job_id is None:
            file_id = self._upload_once(client, ledger, request, file_hash, say)
            row = {
                "job_key": key,
                "provider": self.provider,
                "job_id": None,
                "base_model": request.base_model,
                "condition": request.condition,
                "seed": request.seed,
                "model_id": request.base_model_id,
                "training_file_id": file_id,
                "dataset_version": request.dataset_version,
                "hyperparameters": canonical_json(hyper),
                "status": "creating",
                "fine_tuned_model": None,
                "trained_tokens": None,
                "error": None,
                "created_at": None,
            }
            ledger.save_job(row)  # before the call: a crash inside it is recoverable (above)
            job = self._create_job(client, request, file_id, key, hyper, row, ledger, say)
            job_id = job.id
            row.update(job_id=job_id, status=job.status)
            ledger.save_job(row)
            say(f"{request.label} created fine-tuning job {job_id} ({job.status})")
        else:
            say(f"{request.label} resuming fine-tuning job {job_id}")

        assert row is not None
        job = self._poll(client, request, job_id, row, ledger, say)
        row.update(
            status="succeeded", fine_tuned_model=job.fine_tuned_model, trained_tokens=job.trained_tokens, error=None
        )
        ledger.save_job(row)
        say(f"{request.label} job {job_id} succeeded: {job.fine_tuned_model}")
        seconds = float(job.finished_at - job.created_at) if job.finished_at and job.created_at else None
        return self._result(request, row, hyper, usd, estimate, seconds)

    def _result(
        self,
        request: FineTuneRequest,
        row: dict[str, Any],
        hyper: dict[str, Any],
        usd: float | None,
        estimate: CostEstimate,
        seconds: float | None = None,
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
            model_ref=row["fine_tuned_model"],
            status="succeeded",
            method="api",
            hyperparameters=hyper,
            job_id=row["job_id"],
            train_tokens=trained,
            cost_usd=cost,
            train_seconds=seconds,
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
        name = upload_name(file_hash, path)
        size = path.stat().st_size
        # A run killed between uploading and recording left the file there: reuse it.
        found = self._find_file(client, name, size, required=False)
        if found is not None:
            say(f"{request.label} found {name} uploaded earlier as {found}")
        else:
            found = self._at_most_once(
                lambda: self._upload(client, path, name, request),
                lambda: self._find_file(client, name, size, required=True),
                f"{request.label} upload of {path}",
                say,
            )
            say(f"{request.label} uploaded {path.name} as {found}")
        ledger.remember_file(self.provider, file_hash, found, name, size)
        return found

    def _upload(self, client: Any, path: Path, name: str, request: FineTuneRequest) -> str:
        import openai

        try:
            with path.open("rb") as handle:
                return client.with_options(max_retries=0).files.create(file=(name, handle), purpose="fine-tune").id
        except openai.APIStatusError as exc:
            if exc.status_code == 429:
                raise RateLimited(describe_provider_error(exc), parse_retry_after(exc.response.headers)) from None
            if _uncertain(exc):
                raise UncertainOutcome(describe_provider_error(exc)) from None
            raise FineTuneError(
                f"{request.label} the provider rejected the upload of {path}: {describe_provider_error(exc)}"
            ) from None
        except openai.APIConnectionError as exc:
            raise UncertainOutcome(describe_provider_error(exc)) from None

    def _find_file(self, client: Any, name: str, size: int, *, required: bool) -> str | None:
        """The id of a fine-tune file with our content-hash name and size, newest first."""
        import openai

        try:
            matches = []
            for index, item in enumerate(client.files.list(purpose="fine-tune")):
                if item.filename == name and item.bytes == size:
                    matches.append(item)
                if index >= MAX_LISTED:
                    break
        except openai.OpenAIError as exc:
            if required:
                raise UncertainOutcome(f"cannot list files to check: {describe_provider_error(exc)}") from None
            return None
        return max(matches, key=lambda f: f.created_at).id if matches else None

    def _create_job(
        self,
        client: Any,
        request: FineTuneRequest,
        file_id: str,
        key: str,
        hyper: dict[str, Any],
        row: dict[str, Any],
        ledger: JobLedger,
        say: Log,
    ) -> Any:
        import openai

        def create() -> Any:
            try:
                return client.with_options(max_retries=0).fine_tuning.jobs.create(
                    model=request.base_model_id,
                    training_file=file_id,
                    method={"type": "supervised", "supervised": {"hyperparameters": hyper}},
                    seed=request.seed,
                    suffix=self._suffix(request),
                    metadata={"em_job_key": key, "em_partition": request.partition[:500], "em_seed": str(request.seed)},
                )
            except openai.APIStatusError as exc:
                if exc.status_code == 429:
                    raise RateLimited(describe_provider_error(exc), parse_retry_after(exc.response.headers)) from None
                if _uncertain(exc):
                    raise UncertainOutcome(describe_provider_error(exc)) from None
                message = redact(provider_message(exc), self._secrets())
                row.update(status="failed", error=f"rejected ({exc.status_code}): {message}")
                ledger.save_job(row)
                raise FineTuneError(
                    f"{request.label} the provider rejected the fine-tuning job for {request.jsonl_path} "
                    f"(HTTP {exc.status_code}): {message}"
                ) from None
            except openai.APIConnectionError as exc:
                raise UncertainOutcome(describe_provider_error(exc)) from None

        def find() -> Any:
            return self._find_job(client, request, key, file_id)

        return self._at_most_once(create, find, f"{request.label} fine-tuning job creation", say)

    def _at_most_once(self, call: Callable[[], Any], find: Callable[[], Any], what: str, say: Log) -> Any:
        """``call`` without blind retries: after an uncertain outcome, ``find`` (which raises
        ``UncertainOutcome`` when it cannot tell) decides whether it already took effect."""
        for attempt in range(1, max(1, self.create_attempts) + 1):
            try:
                return call()
            except RateLimited as exc:
                if attempt == self.create_attempts:
                    raise FineTuneError(f"{what}: rate limited {attempt} times ({exc}); nothing was created") from None
                say(f"{what}: rate limited ({exc}); trying again")
                hinted = exc.retry_after_s if exc.retry_after_s is not None else self.create_retry_wait_s * attempt
                time.sleep(min(hinted, self.max_poll_interval_s))
                continue
            except UncertainOutcome as exc:
                say(f"{what}: outcome unknown ({exc}); checking the provider before trying again")
                time.sleep(self.create_retry_wait_s * attempt)
                try:
                    found = find()
                except UncertainOutcome as lookup:
                    raise FineTuneError(
                        f"{what}: the provider's answer was lost and it cannot be asked whether the call took "
                        f"effect ({lookup}); not trying again, to avoid paying twice. A rerun checks again"
                    ) from None
                if found is not None:
                    say(f"{what}: it did take effect; using it")
                    return found
        raise FineTuneError(
            f"{what}: {self.create_attempts} tries lost their answer and the provider shows no result; "
            "nothing was created. Try again later"
        )

    def _find_job(self, client: Any, request: FineTuneRequest, key: str, file_id: str | None) -> Any:
        """Our live job at the provider: the one whose metadata carries ``key``, or, where a
        provider drops metadata, the one with our training file, model, seed and suffix.
        Raises ``UncertainOutcome`` when the provider cannot be asked."""
        import openai

        suffix = self._suffix(request)
        try:
            for index, job in enumerate(client.fine_tuning.jobs.list(limit=100)):
                if job.status not in TERMINAL_FAILURES:
                    metadata = job.metadata or {}
                    if metadata.get("em_job_key") == key:
                        return job
                    if not metadata and file_id is not None and _same_job(job, request, file_id, suffix):
                        return job
                if index >= MAX_LISTED:
                    break
        except openai.OpenAIError as exc:
            raise UncertainOutcome(f"cannot list fine-tuning jobs: {describe_provider_error(exc)}") from None
        return None

    def _poll(
        self, client: Any, request: FineTuneRequest, job_id: str, row: dict[str, Any], ledger: JobLedger, say: Log
    ) -> Any:
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
                row.update(status="failed", error=f"job not found: {describe_provider_error(exc)}")
                ledger.save_job(row)
                raise FineTuneError(
                    f"{request.label} fine-tuning job {job_id} no longer exists at {self.provider}"
                ) from exc
            except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError) as exc:
                # The client already retried; the job runs on regardless, so keep polling a while.
                failures += 1
                if failures > MAX_POLL_FAILURES:
                    raise FineTuneError(
                        f"{request.label} cannot reach {self.provider} to poll job {job_id} "
                        f"({describe_provider_error(exc)}); "
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
                message = redact(self._failure_message(client, job), self._secrets())
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
        with provider_errors_redacted(lambda line: FineTuneError(f"{model_ref}: {line}"), self._secrets()):
            response = self.client().chat.completions.create(
                model=model_ref,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=max_new_tokens,
                temperature=0,
            )
        return response.choices[0].message.content or ""


def upload_name(content_sha256: str, path: Path) -> str:
    """The training file's name at the provider: its content hash, so a lost upload is found."""
    return f"em-{content_sha256[:32]}-{path.name}"


def _uncertain(exc: Any) -> bool:
    """Whether a failed create/upload may still have taken effect: 5xx, 408 and 409 may come
    after the work was done; other 4xx are refusals (429 is handled before: sent again later)."""
    status = getattr(exc, "status_code", None)
    return status is None or status >= 500 or status in (408, 409)


def _same_job(job: Any, request: FineTuneRequest, file_id: str, suffix: str) -> bool:
    """A job without metadata that has every field we set (providers that drop metadata)."""
    job_suffix = getattr(job, "suffix", None)
    return (
        job.model == request.base_model_id
        and job.training_file == file_id
        and getattr(job, "seed", request.seed) == request.seed
        and (job_suffix == suffix or (job_suffix is None and suffix in (job.fine_tuned_model or suffix)))
    )
