"""One fine-tune (one seed) as a Dagster Pipes process: ``python -m em_assets.pipes_entrypoints.train``.

Parameters arrive as the Pipes extra ``em_training_job`` (a ``TrainingJob``). The process

1. fetches the training JSONL from the artifact store and checks its sha256 against the
   dataset version the warehouse recorded (the model must be trained on the data on record);
2. trains with ``LocalHFFineTuner.fine_tune`` built from the same hyperparameters — the very
   code path of the local backend — into a scratch folder;
3. uploads the folder (adapter + manifest.json) to ``output_key`` in the artifact store;
4. reports step / loss / tokens per second as Pipes log lines while training, and one asset
   materialization at the end whose metadata holds the metrics and the model's URI.

A training failure with a known cause (``FineTuneError``: bad data, unknown LoRA target, ...)
is reported as the custom message ``{"fine_tune_error": "..."}`` and the process exits 0, so the
orchestrator can put the cause into the ``models`` row; a Pipes client only sees "exit code 1"
from a crash. Anything else crashes the process, and Pipes records the traceback.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from em_assets.resources.remote_jobs import ERROR_MESSAGE_KEY, TrainingJob


def train_and_store(job: TrainingJob, *, log: Any, on_progress: Any = None) -> Any:
    """Steps 1-3: returns the ``FineTuneResult`` with ``model_ref`` = the stored folder's URI."""
    from em_assets.core.training_data import file_sha256
    from em_assets.resources.artifacts import ArtifactStoreError, store_from_spec
    from em_assets.resources.finetuning import FineTuneError, FineTuneRequest, LocalHFFineTuner

    store = store_from_spec(job.artifact_store)
    label = f"[{job.partition} seed {job.seed}]"
    try:
        jsonl = store.local_path(job.dataset_uri)
    except ArtifactStoreError as exc:
        raise FineTuneError(f"{label} cannot fetch the training data: {exc}") from exc
    actual = file_sha256(jsonl)
    if actual != job.dataset_version:
        raise FineTuneError(
            f"{label} {job.dataset_uri} has sha256 {actual[:12]}, not the recorded dataset_version "
            f"{job.dataset_version[:12]}; re-materialize the {job.condition} dataset"
        )
    tuner = LocalHFFineTuner(**job.hyperparameters)
    with tempfile.TemporaryDirectory(prefix="em-train-") as scratch:
        request = FineTuneRequest(
            partition=job.partition,
            base_model=job.base_model,
            base_model_id=job.base_model_id,
            condition=job.condition,
            seed=job.seed,
            dataset_version=job.dataset_version,
            jsonl_path=str(jsonl),
            output_dir=str(Path(scratch) / "model"),
        )
        result = tuner.fine_tune(request, on_progress=on_progress, log=log)
        result.model_ref = store.put_dir(request.output_dir, job.output_key)
    log(f"{label} stored the model at {result.model_ref}")
    return result


def materialization_metadata(job: TrainingJob, result: Any) -> dict[str, Any]:
    """What the orchestrator reads back into a ``FineTuneResult`` (see ``remote_training``)."""
    details = result.details
    numbers = {
        "final_loss": result.final_loss,
        "train_tokens": result.train_tokens,
        "loss_tokens": result.loss_tokens,
        "train_seconds": result.train_seconds,
        "peak_rss_bytes": result.peak_rss_bytes,
        "steps": details.get("steps"),
        "n_examples": details.get("n_examples"),
        "tokens_per_second": details.get("tokens_per_second"),
    }
    return {
        "model_uri": result.model_ref,
        "method": result.method,
        "seed": job.seed,
        "dataset_version": job.dataset_version,
        **{name: value for name, value in numbers.items() if value is not None},
        "loss_curve": {"raw_value": details.get("loss_curve", []), "type": "json"},
        "hyperparameters": {"raw_value": result.hyperparameters, "type": "json"},
    }


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    from em_assets.resources.finetuning import FineTuneError
    from em_assets.training.runner import progress_logger

    with open_dagster_pipes() as pipes:
        job = TrainingJob.from_extras(dict(pipes.extras))
        label = f"[{job.partition} seed {job.seed}]"
        # Same step / loss / tok/s / ETA lines as the in-process backend, streamed to the run log.
        on_progress = progress_logger(pipes.log.info)(label)
        try:
            result = train_and_store(job, log=pipes.log.info, on_progress=on_progress)
        except FineTuneError as exc:
            pipes.log.error(str(exc))
            pipes.report_custom_message({ERROR_MESSAGE_KEY: str(exc)})
            return
        pipes.report_asset_materialization(metadata=materialization_metadata(job, result))


if __name__ == "__main__":
    main()
