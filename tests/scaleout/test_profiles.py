"""EM_PROFILE picks the resources; production names what it lacks and builds against S3."""

from __future__ import annotations

import dagster as dg
import pytest

from em_assets.profiles import (
    PRODUCTION_OPTIONAL_ENV,
    PRODUCTION_REQUIRED_ENV,
    PROFILE_ENV_VAR,
    ProfileError,
    active_profile,
    profile_resources,
    with_profile,
)
from em_assets.resources.artifacts import LocalArtifactStore, S3ArtifactStore
from em_assets.resources.remote_training import PipesFineTuner, PipesSampler
from tests.scaleout.conftest import TEST_BUCKET

PRODUCTION_ENV = {
    "EM_S3_BUCKET": TEST_BUCKET,
    "EM_S3_PREFIX": "prod",
    "EM_ECS_CLUSTER": "gpu-cluster",
    "EM_ECS_TRAIN_TASK_DEFINITION": "em-train:3",
    "EM_ECS_SUBNETS": "subnet-a, subnet-b",
    "EM_ECS_SECURITY_GROUPS": "sg-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def clean_env(monkeypatch):
    for name in [PROFILE_ENV_VAR, *PRODUCTION_ENV, *PRODUCTION_OPTIONAL_ENV]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_default_profile_is_local(clean_env):
    assert active_profile() == "local"
    assert isinstance(profile_resources()["artifact_store"], LocalArtifactStore)


def test_unknown_profile_names_the_variable(clean_env):
    clean_env.setenv(PROFILE_ENV_VAR, "staging")
    with pytest.raises(
        ProfileError, match=r"EM_PROFILE='staging' is not a profile; expected one of local, smoke, production"
    ):
        profile_resources()


def test_production_without_settings_names_every_missing_variable(clean_env):
    clean_env.setenv(PROFILE_ENV_VAR, "production")
    clean_env.setenv("EM_ECS_CLUSTER", "gpu-cluster")  # one of four present: the other three are named
    with pytest.raises(ProfileError) as raised:
        profile_resources()
    message = str(raised.value)
    assert "EM_PROFILE=production needs these environment variables" in message
    for name in PRODUCTION_REQUIRED_ENV:
        assert (name in message) == (name != "EM_ECS_CLUSTER"), name


def test_production_resources_build_against_s3(clean_env, s3_endpoint, aws_test_credentials, tmp_path):
    for name, value in {**PRODUCTION_ENV, "EM_S3_ENDPOINT_URL": s3_endpoint, PROFILE_ENV_VAR: "production"}.items():
        clean_env.setenv(name, value)
    with dg.build_resources(profile_resources()) as resources:
        store = resources.artifact_store
        assert isinstance(store, S3ArtifactStore)
        note = tmp_path / "report.md"
        note.write_text("# report\n")
        uri = store.put_file(note, "reports/latest.md")
        assert uri == f"s3://{TEST_BUCKET}/prod/reports/latest.md"
        assert store.get_file(uri, tmp_path / "back.md").read_text() == "# report\n"
        # The same bucket through the plain S3Resource key, as any other asset would reach it.
        listed = resources.s3.list_objects_v2(Bucket=TEST_BUCKET, Prefix="prod/")
        assert [o["Key"] for o in listed["Contents"]] == ["prod/reports/latest.md"]

        tuner = resources.local_finetuner
        assert isinstance(tuner, PipesFineTuner) and tuner.max_examples == 0
        params = tuner.job_launcher.ecs_run_task_params("em_assets.pipes_entrypoints.train")
        assert params["cluster"] == "gpu-cluster" and params["taskDefinition"] == "em-train:3"
        assert params["launchType"] == "EC2"  # GPU tasks cannot run on Fargate
        assert params["networkConfiguration"]["awsvpcConfiguration"] == {
            "subnets": ["subnet-a", "subnet-b"],
            "securityGroups": ["sg-1"],
        }
        assert params["overrides"]["containerOverrides"] == [
            {"name": "train", "command": ["python", "-m", "em_assets.pipes_entrypoints.train"]}
        ]
        assert "remote_sampler" not in resources.original_resource_dict  # only with a sampling task definition


def test_production_adds_the_vllm_sampler_when_its_task_definition_is_set(clean_env):
    for name, value in {**PRODUCTION_ENV, "EM_ECS_SAMPLE_TASK_DEFINITION": "em-sample:1"}.items():
        clean_env.setenv(name, value)
    sampler = profile_resources("production")["remote_sampler"]
    assert isinstance(sampler, PipesSampler) and sampler.base_url == "http://localhost:8000/v1"
    with dg.build_resources({"remote_sampler": sampler}) as resources:
        params = resources.remote_sampler.job_launcher.ecs_run_task_params("em_assets.pipes_entrypoints.sample")
    assert (
        params["taskDefinition"] == "em-sample:1" and params["overrides"]["containerOverrides"][0]["name"] == "sample"
    )


def test_with_profile_replaces_the_finetuner_of_the_code_location(clean_env, s3_endpoint):
    from em_assets.definitions import defs

    for name, value in {**PRODUCTION_ENV, "EM_S3_ENDPOINT_URL": s3_endpoint}.items():
        clean_env.setenv(name, value)
    production = with_profile(defs, "production")
    dg.Definitions.validate_loadable(production)
    assert isinstance(production.resources["local_finetuner"], PipesFineTuner)
    assert set(defs.resources) <= set(production.resources)
    assert not isinstance(with_profile(defs, "local").resources["local_finetuner"], PipesFineTuner)


def test_deploy_instance_config_validates():
    """deploy/dagster.yaml: a valid instance config whose ECS run launcher and S3 compute-log
    sections match dagster-aws's schemas (checked without connecting to anything)."""
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    from tests.conftest import REPO

    config, _ = dagster_instance_config(str(REPO / "deploy"))
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    for section, cls in (("run_launcher", EcsRunLauncher), ("compute_logs", S3ComputeLogManager)):
        outcome = validate_config(cls.config_type(), config[section]["config"])
        assert outcome.success, (section, [e.message for e in outcome.errors])
    assert set(config["storage"]["postgres"]["postgres_db"]) >= {"hostname", "username", "password", "db_name"}


def test_smoke_profile_keeps_local_storage_and_shrinks_every_size(clean_env):
    from em_assets.definitions import defs

    smoke = with_profile(defs, "smoke").resources
    local = with_profile(defs, "local").resources
    assert isinstance(smoke["artifact_store"], LocalArtifactStore)
    embedded = "embedded:smollm2-135m-instruct"  # the local profile trains it with the embedded budget
    assert (
        smoke["local_finetuner"].training_settings(embedded).max_examples
        < local["local_finetuner"].training_settings(embedded).max_examples
    )
    assert smoke["evaluation_settings"].max_tokens < local["evaluation_settings"].max_tokens
    assert 0 < smoke["data_settings"].max_train_rows
    assert len(smoke["evaluation_settings"].question_ids) == 2
    assert smoke["probe_settings"].narrow_max_tasks == 4 and local["probe_settings"].narrow_max_tasks == 0  # 0: all
