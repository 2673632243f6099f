"""Fine-tuning (and vLLM sampling) in another process through Dagster Pipes: a subprocess here,
or an ECS task on a GPU host.

``PipesJobLauncher`` starts ``python -m <module>`` with Pipes extras: with
``dagster.PipesSubprocessClient`` (``launcher="subprocess"``: local profile, tests) or with
dagster-aws's ``PipesECSClient`` (``launcher="ecs"``: production; the task definition's
container must hold this package; messages come back through CloudWatch logs).

``PipesFineTuner`` is a ``LocalHFFineTuner`` (same fields, same defaults, same
``describe_hyperparameters``) whose ``fine_tune`` ships each seed to
``em_assets.pipes_entrypoints.train``, which calls ``LocalHFFineTuner.fine_tune`` itself. So
binding it to the ``local_finetuner`` resource key moves training off the Dagster host without
touching ``fine_tuned_model``: the asset's ``materialize_partition`` sees the same backend
interface, and the Pipes session takes the step's context from
``dg.AssetExecutionContext.get()``.

Data flow: the training JSONL is copied into the artifact store under
``datasets/<condition>/<dataset_version>.jsonl`` (content-addressed, uploaded once), the
process writes the trained folder to ``model_store/<base_model>/<condition>/seed<k>``, and the
``model_ref`` recorded in the warehouse is that folder's URI (a path with the local store, the
same path the in-process backend writes; ``s3://...`` with the S3 store).

``PipesSampler`` does the same for sampling: ``em_assets.pipes_entrypoints.sample`` answers chat
requests against an OpenAI-compatible server (vLLM beside it) through the project's LLM engine
and leaves the answers as JSONL in the artifact store.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import dagster as dg
from pydantic import Field

from em_assets.resources.artifacts import ArtifactStore
from em_assets.resources.finetuning import FineTuneError, FineTuneRequest, FineTuneResult, JobLedger, LocalHFFineTuner
from em_assets.resources.finetuning.base import Log
from em_assets.resources.remote_jobs import ERROR_MESSAGE_KEY, SAMPLE_MODULE, TRAIN_MODULE, SamplingJob, TrainingJob

LAUNCHERS = ("subprocess", "ecs")


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


class PipesJobLauncher(dg.ConfigurableResource):
    """Runs ``python -m <module>`` as a Dagster Pipes session, here or on ECS."""

    launcher: Literal["subprocess", "ecs"] = "subprocess"
    python_executable: str = Field(default="", description="subprocess: the interpreter; empty = this one")
    ecs_cluster: str = ""
    ecs_task_definition: str = Field(default="", description="family[:revision] or ARN; its image holds em_assets")
    ecs_container_name: str = Field(default="train", description="the container that runs the module")
    ecs_subnets: str = Field(default="", description="comma-separated subnet ids (awsvpc network mode)")
    ecs_security_groups: str = Field(default="", description="comma-separated security group ids")
    ecs_capacity_provider: str = Field(
        default="", description="capacity provider of the GPU instances; empty = launch type EC2 (Fargate has no GPUs)"
    )
    aws_region: str = ""

    def aws_client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, **({"region_name": self.aws_region} if self.aws_region else {}))

    def command(self, module: str, python: str = "python") -> list[str]:
        return [python, "-m", module]

    def ecs_run_task_params(self, module: str) -> dict[str, Any]:
        """``ecs.run_task`` arguments for one task running ``module`` (Pipes adds its env vars)."""
        missing = [name for name in ("ecs_cluster", "ecs_task_definition", "ecs_subnets") if not getattr(self, name)]
        if missing:
            raise ValueError(f"the ECS launcher needs {', '.join(missing)}")
        network: dict[str, Any] = {"subnets": _split(self.ecs_subnets)}
        if self.ecs_security_groups:
            network["securityGroups"] = _split(self.ecs_security_groups)
        params: dict[str, Any] = {
            "cluster": self.ecs_cluster,
            "taskDefinition": self.ecs_task_definition,
            "count": 1,
            "networkConfiguration": {"awsvpcConfiguration": network},
            "overrides": {"containerOverrides": [{"name": self.ecs_container_name, "command": self.command(module)}]},
        }
        if self.ecs_capacity_provider:
            params["capacityProviderStrategy"] = [{"capacityProvider": self.ecs_capacity_provider, "weight": 1}]
        else:
            params["launchType"] = "EC2"
        return params

    def run(self, context: Any, module: str, extras: dict[str, Any]) -> dg.PipesClientCompletedInvocation:
        with warnings.catch_warnings():
            # Every Pipes session warns that a reader attribute is a preview API; noise in run logs.
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return self._run(context, module, extras)

    def _run(self, context: Any, module: str, extras: dict[str, Any]) -> dg.PipesClientCompletedInvocation:
        if self.launcher == "subprocess":
            client = dg.PipesSubprocessClient()
            return client.run(
                command=self.command(module, self.python_executable or sys.executable), context=context, extras=extras
            )
        if self.launcher == "ecs":
            from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesECSClient

            client = PipesECSClient(
                client=self.aws_client("ecs"),
                message_reader=PipesCloudWatchMessageReader(client=self.aws_client("logs")),
            )
            return client.run(
                context=context,
                run_task_params=self.ecs_run_task_params(module),  # type: ignore[arg-type]
                extras=extras,
                pipes_container_name=self.ecs_container_name,
            )
        raise ValueError(f"unknown launcher {self.launcher!r}; expected one of {LAUNCHERS}")


def model_store_key(base_model: str, condition: str, seed: int) -> str:
    """The artifact-store key of a trained model (mirrors ``runner.model_store_dir``)."""
    return f"model_store/{base_model}/{condition}/seed{seed}"


def dataset_key(condition: str, dataset_version: str) -> str:
    return f"datasets/{condition}/{dataset_version}.jsonl"


def _metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def result_from_invocation(invocation: dg.PipesClientCompletedInvocation, request: FineTuneRequest) -> FineTuneResult:
    """The ``FineTuneResult`` the remote process reported (or its ``FineTuneError``)."""
    for message in invocation.get_custom_messages():
        if isinstance(message, dict) and ERROR_MESSAGE_KEY in message:
            raise FineTuneError(str(message[ERROR_MESSAGE_KEY]))
    materializations = [r for r in invocation.get_results() if isinstance(r, dg.MaterializeResult)]
    if len(materializations) != 1:
        raise FineTuneError(
            f"{request.label} the training process reported {len(materializations)} results, expected 1"
        )
    values = _metadata_values(dict(materializations[0].metadata or {}))
    return FineTuneResult(
        model_ref=values["model_uri"],
        status="succeeded",
        method=values["method"],
        hyperparameters=values["hyperparameters"],
        final_loss=values.get("final_loss"),
        train_tokens=values.get("train_tokens"),
        loss_tokens=values.get("loss_tokens"),
        train_seconds=values.get("train_seconds"),
        peak_rss_bytes=values.get("peak_rss_bytes"),
        cost_usd=0.0,
        details={
            "pipes_metadata": values,
            **{k: values[k] for k in ("loss_curve", "steps", "n_examples", "tokens_per_second") if k in values},
        },
    )


class PipesFineTuner(LocalHFFineTuner):
    """``LocalHFFineTuner`` whose training runs in a Pipes process (subprocess or ECS task)."""

    job_launcher: PipesJobLauncher
    artifact_store: ArtifactStore

    backend_name: ClassVar[str] = "local_hf_pipes"

    def hyperparameter_fields(self) -> dict[str, Any]:
        """The ``LocalHFFineTuner`` fields set on this resource: what the remote process rebuilds it
        from, so the fields left unset stay unset there too (the embedded budget applies alike)."""
        return {name: getattr(self, name) for name in LocalHFFineTuner.model_fields if name in self.model_fields_set}

    def training_job(self, request: FineTuneRequest) -> TrainingJob:
        """Stage the dataset in the artifact store (once per version) and describe the job."""
        key = dataset_key(request.condition, request.dataset_version)
        dataset_uri = (
            self.artifact_store.uri(key)
            if self.artifact_store.exists(key)
            else self.artifact_store.put_file(request.jsonl_path, key)
        )
        return TrainingJob(
            partition=request.partition,
            base_model=request.base_model,
            base_model_id=request.base_model_id,
            condition=request.condition,
            seed=request.seed,
            dataset_version=request.dataset_version,
            dataset_uri=dataset_uri,
            output_key=model_store_key(request.base_model, request.condition, request.seed),
            artifact_store=self.artifact_store.remote_spec(),
            hyperparameters=self.hyperparameter_fields(),
        )

    def fine_tune(
        self,
        request: FineTuneRequest,
        *,
        ledger: JobLedger | None = None,
        on_progress: Callable[[Any], None] | None = None,
        log: Log | None = None,
    ) -> FineTuneResult:
        # Progress arrives as Pipes log lines in the step's log (on_progress is in-process only).
        try:
            context = dg.AssetExecutionContext.get()
        except dg.DagsterInvariantViolationError as exc:
            raise FineTuneError(
                f"{request.label} PipesFineTuner runs inside an asset step (no context: {exc})"
            ) from exc
        job = self.training_job(request)
        if log is not None:
            log(f"{request.label} launching {TRAIN_MODULE} ({self.job_launcher.launcher}), data {job.dataset_uri}")
        try:
            invocation = self.job_launcher.run(context, TRAIN_MODULE, job.to_extras())
        except Exception as exc:  # exit code != 0 (subprocess) / stopped container (ECS); interrupts pass
            raise FineTuneError(
                f"{request.label} the training process failed: {exc} (its traceback is in the run's [pipes] events)"
            ) from exc
        return result_from_invocation(invocation, request)

    def answer(self, model_ref: str, prompt: str, *, max_new_tokens: int = 200) -> str:
        """As ``LocalHFFineTuner.answer``, on a local copy of a stored model (``s3://`` refs are
        downloaded once into the artifact cache)."""
        local_ref = model_ref
        if model_ref.startswith("s3://"):
            local_ref = str(self.artifact_store.local_path(model_ref))
        return super().answer(local_ref, prompt, max_new_tokens=max_new_tokens)


@dataclass
class SampledAnswers:
    uri: str  # the answers JSONL in the artifact store
    rows: list[dict[str, Any]]  # one per request, in request order
    metadata: dict[str, Any]  # what the process reported (counts, engine call summary)


def request_fields(request: Any) -> dict[str, Any]:
    """A ``ChatRequest`` as JSON for the sampling process (its model is the job's; tags stay here)."""
    fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(request) if f.name not in ("model", "tags")}
    fields["messages"] = [dict(m) for m in fields["messages"]]
    fields["extra"] = dict(fields["extra"])
    return fields


class RemoteSampler(dg.ConfigurableResource):
    """Where ``sampled_responses`` sends open models (local HF backends) to be sampled outside
    the step. This base binding is "nowhere": they are sampled in the step through
    ``llm_local``. The production profile binds ``PipesSampler`` under ``remote_sampler``."""

    def enabled(self) -> bool:
        return False

    def sample(
        self, context: Any, requests: Sequence[Any], *, model: str, output_key: str, adapter_uri: str = ""
    ) -> SampledAnswers:
        raise NotImplementedError("no remote sampler is configured (set EM_ECS_SAMPLE_TASK_DEFINITION in production)")


def served_model(model_ref: str, base_model_id: str, condition: str, label: str) -> tuple[str, str]:
    """(name the server answers under, adapter folder to load first) for one ``models`` row:
    the un-tuned control is the server's base model itself; a trained model is its LoRA folder,
    loaded under ``label`` (a partition/seed slug)."""
    if condition == "base":
        return base_model_id, ""
    return label, model_ref


class PipesSampler(RemoteSampler):
    """Answers chat requests in a Pipes process next to an OpenAI-compatible server (vLLM)."""

    job_launcher: PipesJobLauncher
    artifact_store: ArtifactStore
    base_url: str = Field(description="the server as the PROCESS reaches it, e.g. http://localhost:8000/v1")
    api_key_env_var: str = "EM_VLLM_API_KEY"
    max_in_flight: int = 64

    def enabled(self) -> bool:
        return True

    def sample(
        self, context: Any, requests: Sequence[Any], *, model: str, output_key: str, adapter_uri: str = ""
    ) -> SampledAnswers:
        """``model``: the served name; with ``adapter_uri`` (a model-store folder) the process
        first loads that LoRA adapter into the server under this name."""
        job = SamplingJob(
            base_url=self.base_url,
            model=model,
            requests=[request_fields(r) for r in requests],
            output_key=output_key,
            artifact_store=self.artifact_store.remote_spec(),
            adapter_uri=adapter_uri,
            api_key_env_var=self.api_key_env_var,
            max_in_flight=self.max_in_flight,
        )
        invocation = self.job_launcher.run(context, SAMPLE_MODULE, job.to_extras())
        reported = [r for r in invocation.get_results() if isinstance(r, dg.MaterializeResult)]
        if len(reported) != 1:
            raise RuntimeError(
                f"the sampling process reported {len(reported)} results, expected 1 (see its [pipes] events)"
            )
        metadata = _metadata_values(dict(reported[0].metadata or {}))
        text = self.artifact_store.local_path(metadata["answers_uri"]).read_text(encoding="utf-8")
        return SampledAnswers(metadata["answers_uri"], [json.loads(line) for line in text.splitlines()], metadata)


__all__ = [
    "LAUNCHERS",
    "PipesFineTuner",
    "PipesSampler",
    "RemoteSampler",
    "SampledAnswers",
    "PipesJobLauncher",
    "dataset_key",
    "model_store_key",
    "result_from_invocation",
    "served_model",
]
