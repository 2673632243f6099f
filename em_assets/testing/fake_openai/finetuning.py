"""``/v1/fine_tuning/jobs``: create (with OpenAI-like validation of the training JSONL), list,
retrieve, events, checkpoints and cancel.

A job advances one step each time it is retrieved: ``fine_tune_polls_per_stage`` retrieves in
``validating_files``, as many in ``running``, then ``succeeded`` (a new model the models endpoint
lists, and a metrics file) or ``failed`` with ``fine_tune_fail_with``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from em_assets.testing.fake_openai.chat import prompt_tokens
from em_assets.testing.fake_openai.config import ServerContext
from em_assets.testing.fake_openai.files import FileStore
from em_assets.testing.fake_openai.wire import Request, Response, error_response, json_response, new_id, page, public

_ACTIVE = ("validating_files", "queued", "running")


def check_training_file(content: bytes) -> tuple[str | None, int]:
    """OpenAI-like validation of a chat fine-tuning JSONL: (problem or None, token count)."""
    tokens = 0
    lines = [line for line in content.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        return "Training file is empty.", 0
    for number, line in enumerate(lines, 1):
        try:
            messages = json.loads(line)["messages"]
        except (ValueError, KeyError, TypeError):
            return f"Invalid file format. Line {number}: expected a JSON object with a 'messages' list.", 0
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and "role" in m and "content" in m for m in messages
        ):
            return f"Invalid file format. Line {number}: every message needs 'role' and 'content'.", 0
        if not any(m["role"] == "assistant" for m in messages):
            return f"Invalid file format. Line {number}: no assistant message to train on.", 0
        tokens += prompt_tokens(messages)
    return None, tokens


def _hyperparameters(body: dict[str, Any]) -> dict[str, Any]:
    """The job's hyperparameters: legacy ``hyperparameters`` overridden by ``method``'s, "auto"
    resolved to the values OpenAI reports for a small file."""
    given = dict(body.get("hyperparameters") or {})
    method = body.get("method") or {}
    given.update(((method.get(method.get("type") or "supervised") or {}).get("hyperparameters")) or {})
    defaults = {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 2.0}
    return {name: default if given.get(name) in (None, "auto") else given[name] for name, default in defaults.items()}


def _add_event(job: dict[str, Any], message: str, level: str = "info", data: dict | None = None) -> None:
    job["_events"].append(
        {
            "object": "fine_tuning.job.event",
            "id": new_id("ftevent-"),
            "created_at": int(time.time()),
            "level": level,
            "message": message,
            "data": data or {},
            "type": "metrics" if data else "message",
        }
    )


def _missing(id: str) -> Response:
    return error_response(404, f"No such fine-tuning job: {id}", param="id")


class FineTuningJobs:
    def __init__(self, context: ServerContext, files: FileStore) -> None:
        self.context = context
        self.files = files
        self.jobs: dict[str, dict[str, Any]] = {}
        self.fine_tuned_models: list[str] = []

    def created(self) -> list[dict[str, Any]]:
        """Every job, as the API shows it, oldest first (read from the test's thread)."""
        with self.context.counters.lock:
            return [public(job) for job in self.jobs.values()]

    async def create(self, request: Request) -> Response:
        body = request.json()
        config = self.context.config
        model, training_file = body.get("model"), body.get("training_file")
        if not model or not training_file:
            return error_response(400, "'model' and 'training_file' are required")
        if training_file not in self.files.files:
            return error_response(400, f"invalid training_file: {training_file}", param="training_file")
        if config.reject_training_file is not None:
            return error_response(400, config.reject_training_file, code="invalid_training_file", param="training_file")
        problem, n_tokens = check_training_file(self.files.files[training_file].content)
        if problem:
            return error_response(400, problem, code="invalid_training_file", param="training_file")
        hyper = _hyperparameters(body)
        job: dict[str, Any] = {
            "id": new_id("ftjob-"),
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "finished_at": None,
            "model": model,
            "fine_tuned_model": None,
            "organization_id": "org-fake",
            "status": "validating_files",
            "hyperparameters": hyper,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "training_file": training_file,
            "validation_file": body.get("validation_file"),
            "result_files": [],
            "trained_tokens": None,
            "error": None,
            "seed": body.get("seed") if body.get("seed") is not None else 42,
            "suffix": body.get("suffix"),
            "estimated_finish": None,
            "integrations": [],
            "metadata": body.get("metadata"),
            "_polls": 0,
            "_events": [],
            "_tokens": n_tokens,
        }
        _add_event(job, f"Created fine-tuning job: {job['id']}")
        _add_event(job, "Validating training file: " + training_file)
        self.jobs[job["id"]] = job
        return json_response(public(job))

    def _advance(self, job: dict[str, Any]) -> None:
        config = self.context.config
        job["_polls"] += 1
        per_stage = max(1, config.fine_tune_polls_per_stage)
        if job["status"] == "validating_files" and job["_polls"] >= per_stage:
            job["status"] = "running"
            _add_event(job, "Fine-tuning job started")
        elif job["status"] == "running":
            step = job["_polls"] - per_stage
            loss = 1.5 / (step + 1)
            metrics = {"step": step, "train_loss": loss}
            _add_event(job, f"Step {step}/{per_stage}: training loss={loss:.4f}", data=metrics)
            if job["_polls"] >= 2 * per_stage:
                job["finished_at"] = int(time.time())
                if config.fine_tune_fail_with is not None:
                    job["status"] = "failed"
                    job["error"] = {"code": "training_failed", "message": config.fine_tune_fail_with, "param": None}
                    _add_event(job, f"Fine-tuning job failed: {config.fine_tune_fail_with}", level="error")
                    return
                self._succeed(job)

    def _succeed(self, job: dict[str, Any]) -> None:
        name = f"ft:{job['model']}:fake-org:{job['suffix'] or ''}:{job['id'][-8:]}"
        job["status"] = "succeeded"
        job["fine_tuned_model"] = name
        job["trained_tokens"] = job["_tokens"] * int(job["hyperparameters"]["n_epochs"])
        rows = "".join(f"{s},{1.5 / s:.4f},{0.5 + 0.04 * s:.3f}\n" for s in range(1, 6))
        metrics = "step,train_loss,train_accuracy\n" + rows
        job["result_files"] = [self.files.store("step_metrics.csv", "fine-tune-results", metrics.encode()).id]
        self.fine_tuned_models.append(name)
        _add_event(job, f"New fine-tuned model created: {name}")
        _add_event(job, "The job has successfully completed")

    async def retrieve(self, request: Request, id: str) -> Response:
        if id not in self.jobs:
            return _missing(id)
        job = self.jobs[id]
        if job["status"] in _ACTIVE:
            self._advance(job)
        return json_response(public(job))

    async def list_all(self, request: Request) -> Response:
        jobs = sorted(self.jobs.values(), key=lambda j: j["created_at"], reverse=True)
        return json_response(page([public(j) for j in jobs], request))

    async def events(self, request: Request, id: str) -> Response:
        if id not in self.jobs:
            return _missing(id)
        return json_response(page(list(reversed(self.jobs[id]["_events"])), request))  # newest first

    async def checkpoints(self, request: Request, id: str) -> Response:
        if id not in self.jobs:
            return _missing(id)
        job = self.jobs[id]
        checkpoints = []
        if job["status"] == "succeeded":
            checkpoints.append(
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": new_id("ftckpt_"),
                    "created_at": job["finished_at"],
                    "fine_tuned_model_checkpoint": job["fine_tuned_model"] + ":ckpt-step-5",
                    "fine_tuning_job_id": id,
                    "step_number": 5,
                    "metrics": {"step": 5, "train_loss": 0.3},
                }
            )
        return json_response(page(checkpoints, request))

    async def cancel(self, request: Request, id: str) -> Response:
        if id not in self.jobs:
            return _missing(id)
        job = self.jobs[id]
        if job["status"] in _ACTIVE:
            job["status"] = "cancelled"
            job["finished_at"] = int(time.time())
            _add_event(job, "Fine-tuning job cancelled")
        return json_response(public(job))
