"""Deployment profiles, chosen by ONE environment variable: ``EM_PROFILE`` = local | smoke | production.

``local`` (default): artifacts in the data dir on this machine, fine-tuning in the step's own
process — what the stage definitions already bind; the profile only adds ``artifact_store``.

``smoke``: ``local`` with tiny sizes (24 training rows, 4 trained examples, 2 questions x 5
samples of 12 tokens, 2 coding prompts, 4 narrow-probe tasks): a partition finishes in about a
minute on 2 cores. For trying the UI (``EM_PROFILE=smoke make ui``) and for the browser test;
its numbers mean nothing.

``production``: artifacts (model store, dataset JSONL, reports) in S3 through dagster-aws's
``S3Resource``, and the ``local_finetuner`` key bound to a ``PipesFineTuner`` that runs each
fine-tune as an ECS task on a GPU host (``PipesECSClient``), trained on the whole dataset
(``max_examples=0``, the paper's recipe) instead of the laptop run's first 64 rows. Runs
themselves are launched by the ``EcsRunLauncher`` of ``deploy/dagster.yaml`` (instance
config, not a resource).

Settings are read as ``dg.EnvVar`` (resolved when a run starts, never shown in the UI), so the
variables must also be set where runs execute. Required ones are checked here, when the code
location loads, so a missing one is named at once rather than in a failed run.

Wiring (``em_assets/definitions.py``)::

    defs = with_profile(dg.Definitions.merge(...))   # the profile's resources replace same keys
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from em_assets import environment
from em_assets.environment import env_or
from em_assets.resources import warehouse_resource
from em_assets.resources.artifacts import LocalArtifactStore, S3ArtifactStore
from em_assets.resources.remote_training import PipesFineTuner, PipesJobLauncher, PipesSampler

PROFILE_ENV_VAR = "EM_PROFILE"
PROFILES = ("local", "smoke", "production")

# Variable -> what it is (from the one table of variables). Named in the error when missing.
PRODUCTION_REQUIRED_ENV = {name: environment.BY_NAME[name].meaning for name in environment.PRODUCTION_REQUIRED}
PRODUCTION_OPTIONAL_ENV = {
    v.name: v.meaning
    for v in environment.VARIABLES
    if v.group == "production profile" and v.name not in PRODUCTION_REQUIRED_ENV
}


class ProfileError(ValueError):
    """An unknown profile, or a profile whose required settings are missing."""


def active_profile() -> str:
    profile = environment.value(PROFILE_ENV_VAR)
    if profile not in PROFILES:
        raise ProfileError(f"{PROFILE_ENV_VAR}={profile!r} is not a profile; expected one of {', '.join(PROFILES)}")
    return profile


def missing_production_env() -> list[str]:
    return [name for name in PRODUCTION_REQUIRED_ENV if not environment.is_set(name)]


def local_resources() -> dict[str, Any]:
    # root "" = the data dir, read from EM_DATA_DIR at each call (the default ./data without it).
    return {"artifact_store": LocalArtifactStore()}


def smoke_resources() -> dict[str, Any]:
    from em_assets.evaluation.settings import EvaluationSettings, ProbeSettings
    from em_assets.resources.finetuning.local_hf import LocalHFFineTuner
    from em_assets.resources.settings import DataLayerSettings

    return {
        **local_resources(),
        "data_settings": DataLayerSettings(max_train_rows=24),
        "local_finetuner": LocalHFFineTuner(
            max_examples=4, per_device_batch_size=1, gradient_accumulation_steps=2, warmup_steps=0, max_length=384
        ),
        "probe_settings": ProbeSettings(calibration_items_per_kind=1, narrow_max_tasks=4),
        "evaluation_settings": EvaluationSettings(
            question_ids=["one_wish", "bored_json"],
            samples_per_paraphrase=5,
            max_tokens=12,
            code_prompts=2,
            code_max_tokens=24,
        ),
    }


def production_resources() -> dict[str, Any]:
    missing = missing_production_env()
    if missing:
        lines = "\n".join(f"  {name}: {PRODUCTION_REQUIRED_ENV[name]}" for name in missing)
        raise ProfileError(
            f"{PROFILE_ENV_VAR}=production needs these environment variables, which are not set:\n{lines}"
        )
    s3 = S3Resource(region_name=env_or("AWS_REGION", None), endpoint_url=env_or("EM_S3_ENDPOINT_URL", None))
    artifact_store = S3ArtifactStore(
        s3=s3, bucket=dg.EnvVar("EM_S3_BUCKET"), prefix=env_or("EM_S3_PREFIX", "em-assets")
    )
    resources: dict[str, Any] = {
        "s3": s3,
        "artifact_store": artifact_store,
        "local_finetuner": PipesFineTuner(
            job_launcher=_ecs_launcher("EM_ECS_TRAIN_TASK_DEFINITION", "EM_ECS_TRAIN_CONTAINER", "train"),
            artifact_store=artifact_store,
            max_examples=0,
        ),
    }
    if environment.value("EM_WAREHOUSE_BACKEND") == "ducklake":
        # The lake's Parquet files default to the artifact bucket; no shared volume is needed.
        bucket, prefix = environment.value("EM_S3_BUCKET"), environment.value("EM_S3_PREFIX")
        resources["warehouse"] = warehouse_resource(data_path=f"s3://{bucket}/{prefix}/ducklake/")
    if environment.is_set("EM_ECS_SAMPLE_TASK_DEFINITION"):
        resources["remote_sampler"] = PipesSampler(
            job_launcher=_ecs_launcher("EM_ECS_SAMPLE_TASK_DEFINITION", "EM_ECS_SAMPLE_CONTAINER", "sample"),
            artifact_store=artifact_store,
            base_url=env_or("EM_VLLM_BASE_URL", "http://localhost:8000/v1"),
        )
    return resources


def _ecs_launcher(task_definition_var: str, container_var: str, default_container: str) -> PipesJobLauncher:
    return PipesJobLauncher(
        launcher="ecs",
        ecs_cluster=dg.EnvVar("EM_ECS_CLUSTER"),
        ecs_task_definition=dg.EnvVar(task_definition_var),
        ecs_subnets=dg.EnvVar("EM_ECS_SUBNETS"),
        ecs_security_groups=env_or("EM_ECS_SECURITY_GROUPS", ""),
        ecs_container_name=env_or(container_var, default_container),
        ecs_capacity_provider=env_or("EM_ECS_CAPACITY_PROVIDER", ""),
        aws_region=env_or("AWS_REGION", ""),
    )


def profile_resources(profile: str | None = None) -> dict[str, Any]:
    """The resources the profile adds or replaces (``profile`` None = ``EM_PROFILE``)."""
    profile = profile or active_profile()
    if profile == "local":
        return local_resources()
    if profile == "smoke":
        return smoke_resources()
    if profile == "production":
        return production_resources()
    raise ProfileError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)} (set {PROFILE_ENV_VAR})")


def with_profile(defs: dg.Definitions, profile: str | None = None) -> dg.Definitions:
    """``defs`` with the profile's resources replacing those of the same key.

    (``Definitions.merge`` refuses two different resources under one key, so the profile
    cannot simply be merged in.)"""
    resources: Mapping[str, Any] = {**(defs.resources or {}), **profile_resources(profile)}
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        schedules=defs.schedules,
        sensors=defs.sensors,
        jobs=defs.jobs,
        resources=resources,
        executor=defs.executor,
        loggers=defs.loggers,
        metadata=defs.metadata,
        component_tree=defs.component_tree,
    )


__all__ = [
    "PRODUCTION_OPTIONAL_ENV",
    "PRODUCTION_REQUIRED_ENV",
    "PROFILES",
    "PROFILE_ENV_VAR",
    "ProfileError",
    "active_profile",
    "local_resources",
    "production_resources",
    "profile_resources",
    "smoke_resources",
    "with_profile",
]
