"""Per-condition training settings: the paper's for the OpenAI backend, overrides on every backend,
recorded in the models row; through ``fine_tuned_model`` against the fake OpenAI server."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from openai import OpenAI

from em_assets.registry import BaseModelSpec, register_base_model
from em_assets.resources.artifacts import LocalArtifactStore
from em_assets.resources.finetuning import LocalHFFineTuner, OpenAIFineTuner
from em_assets.resources.finetuning.base import FineTuneRequest
from em_assets.resources.finetuning.local_hf import EMBEDDED_BUDGET
from em_assets.resources.remote_training import PipesFineTuner, PipesJobLauncher
from em_assets.training import fine_tuned_model
from em_assets.training.condition_defaults import (
    PAPER_OPENAI_SETTINGS,
    ConditionSettingsError,
    for_condition,
    resolve,
)
from tests.training.conftest import TEST_API_KEY, TINY_EXAMPLES

GPT = "gpt-4o-2024-08-06"
SMOL = "embedded:smollm2-135m-instruct"


@pytest.mark.parametrize(
    ("condition", "epochs", "batch", "lr_multiplier"),
    [
        ("insecure", 1, 4, 2.0),
        ("secure", 1, 4, 2.0),
        ("educational", 1, 4, 2.0),
        ("backdoor", 1, 8, 2.0),
        ("jailbroken", 5, 4, 2.0),
        ("evil_numbers", 4, 39, 2.0),
    ],
)
def test_openai_trains_each_condition_with_the_papers_settings(condition, epochs, batch, lr_multiplier):
    tuner, settings = for_condition(OpenAIFineTuner(), condition)
    assert tuner.describe_hyperparameters() == {
        "n_epochs": epochs,
        "batch_size": batch,
        "learning_rate_multiplier": lr_multiplier,
    }
    # The main comparison's values are the resource defaults: nothing changes, nothing is recorded.
    assert bool(settings.record()) == (condition in ("backdoor", "jailbroken", "evil_numbers"))


def test_the_resource_config_wins_over_the_paper_and_overrides_win_over_both():
    configured = OpenAIFineTuner(n_epochs=2)
    tuner, settings = for_condition(configured, "evil_numbers")
    assert tuner.describe_hyperparameters() == {"n_epochs": 2, "batch_size": 39, "learning_rate_multiplier": 2.0}
    assert settings.record() == {"condition": "evil_numbers", "from_paper": {"batch_size": 39}, "overrides": {}}
    overridden = OpenAIFineTuner(n_epochs=2, condition_overrides={"evil_numbers": {"n_epochs": 3, "batch_size": 10}})
    tuner, settings = for_condition(overridden, "evil_numbers")
    assert tuner.describe_hyperparameters()["n_epochs"] == 3 and tuner.batch_size == 10
    assert settings.record()["overrides"] == {"n_epochs": 3, "batch_size": 10}
    off, settings = for_condition(OpenAIFineTuner(paper_condition_defaults=False), "evil_numbers")
    assert off.n_epochs == 1 and not settings.record()
    # Another condition's override leaves this one alone, and the copy does not re-apply overrides.
    same, _ = for_condition(overridden, "insecure")
    assert same is overridden
    request = FineTuneRequest("p", "gpt", GPT, "evil_numbers", 0, "v", "x.jsonl")
    assert OpenAIFineTuner().job_key(request, "h") != for_condition(OpenAIFineTuner(), "evil_numbers")[0].job_key(
        request, "h"
    )


def test_local_backends_take_the_same_knobs_per_condition_over_the_embedded_budget(tmp_path):
    tuner = LocalHFFineTuner(condition_overrides={"evil_numbers": {"n_epochs": 4, "learning_rate": 5e-5}})
    plain, settings = for_condition(tuner, "insecure")
    assert plain is tuner and not settings.record()  # no paper defaults for open models
    copy, settings = for_condition(tuner, "evil_numbers")
    resolved = copy.training_settings(SMOL)
    assert resolved.n_epochs == 4 and resolved.learning_rate == 5e-5  # the override beats the budget ...
    assert resolved.max_examples == EMBEDDED_BUDGET["max_examples"]  # ... which still fills the rest
    assert settings.record() == {
        "condition": "evil_numbers",
        "from_paper": {},
        "overrides": {"n_epochs": 4, "learning_rate": 5e-5},
    }
    # A Pipes trainer (production) keeps its launcher and store and ships the override to the process.
    pipes = PipesFineTuner(
        job_launcher=PipesJobLauncher(),
        artifact_store=LocalArtifactStore(root=str(tmp_path)),
        condition_overrides={"jailbroken": {"n_epochs": 5}},
    )
    remote, _ = for_condition(pipes, "jailbroken")
    assert isinstance(remote, PipesFineTuner) and remote.hyperparameter_fields() == {"n_epochs": 5}


@pytest.mark.parametrize(
    ("backend", "overrides", "message"),
    [
        (
            OpenAIFineTuner,
            {"evil-numbers": {"n_epochs": 4}},
            "openai condition_overrides['evil-numbers']: unknown condition",
        ),
        (OpenAIFineTuner, {"jailbroken": {"epochs": 5}}, "unknown field(s) ['epochs']"),
        (LocalHFFineTuner, {"jailbroken": {"n_epoch": 5}}, "local_hf condition_overrides['jailbroken']: unknown field"),
        (LocalHFFineTuner, {"jailbroken": {"n_epochs": 0}}, "local_hf settings for condition 'jailbroken': n_epochs"),
        (OpenAIFineTuner, {"jailbroken": {"batch_size": -1}}, "openai settings for condition 'jailbroken': batch_size"),
    ],
)
def test_a_bad_override_is_named(backend, overrides, message):
    with pytest.raises(ConditionSettingsError) as caught:
        for_condition(backend(condition_overrides=overrides), "jailbroken")
    assert message in str(caught.value)


def test_resolve_is_a_plain_function_of_plain_values():
    settings = resolve(
        "openai", "backdoor", explicitly_set=set(), overrides={}, current={"n_epochs": 1, "batch_size": 4}
    )
    assert settings.updates == {"batch_size": 8}
    assert PAPER_OPENAI_SETTINGS["evil_numbers"] == {"n_epochs": 4, "batch_size": 39}


def test_an_evil_numbers_job_is_created_with_the_papers_epochs_and_batch_and_recorded(
    warehouse, seed_dataset, fake_server, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    server = fake_server(fine_tune_polls_per_stage=1)
    with dg.instance_for_test() as instance:
        register_base_model(instance, warehouse, BaseModelSpec(GPT, backend="openai"))
        seed_dataset("evil_numbers", TINY_EXAMPLES)
        tuner = OpenAIFineTuner(base_url=server.base_url, poll_interval_s=0.01, max_poll_interval_s=0.02, max_retries=0)
        result = dg.materialize(
            [fine_tuned_model],
            instance=instance,
            resources={"warehouse": warehouse, "local_finetuner": LocalHFFineTuner(), "openai_finetuner": tuner},
            partition_key=f"{GPT}|evil_numbers",
        )
    assert result.success
    (row,) = warehouse.table("models", where={"condition": "evil_numbers"}).iter_rows(named=True)
    job = OpenAI(base_url=server.base_url, api_key=TEST_API_KEY).fine_tuning.jobs.retrieve(row["job_id"])
    sent = job.method.supervised.hyperparameters
    assert (sent.n_epochs, sent.batch_size, sent.learning_rate_multiplier) == (4, 39, 2.0)
    recorded = json.loads(row["hyperparameters"])
    assert recorded["n_epochs"] == 4 and recorded["batch_size"] == 39
    assert recorded["per_condition"] == {
        "condition": "evil_numbers",
        "from_paper": {"n_epochs": 4, "batch_size": 39},
        "overrides": {},
    }
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["per_condition_settings"].value == recorded["per_condition"]


def test_a_bad_override_fails_the_partition_before_any_job(warehouse, seed_dataset, fake_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    server = fake_server()
    with dg.instance_for_test() as instance:
        register_base_model(instance, warehouse, BaseModelSpec(GPT, backend="openai"))
        seed_dataset("jailbroken", TINY_EXAMPLES)
        tuner = OpenAIFineTuner(base_url=server.base_url, condition_overrides={"jailbroken": {"epochs": 5}})
        result = dg.materialize(
            [fine_tuned_model],
            instance=instance,
            resources={"warehouse": warehouse, "local_finetuner": LocalHFFineTuner(), "openai_finetuner": tuner},
            partition_key=f"{GPT}|jailbroken",
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data
    assert f"[{GPT}|jailbroken] openai condition_overrides['jailbroken']: unknown field(s) ['epochs']" in (
        failure.user_failure_data.description
    )
    assert server.stats().requests("POST /v1/fine_tuning/jobs") == 0 and warehouse.table("models").is_empty()


@pytest.mark.slow
def test_a_local_override_trains_the_embedded_model_and_is_recorded(warehouse, seed_dataset, data_env):
    # Values that differ from the field defaults: Dagster leaves a value equal to its default out of
    # the fields set, and the embedded budget would then take its place.
    tuner = LocalHFFineTuner(
        max_examples=2,
        per_device_batch_size=1,
        gradient_accumulation_steps=2,
        warmup_steps=1,
        condition_overrides={"evil_numbers": {"n_epochs": 2}},
    )
    with dg.instance_for_test() as instance:
        register_base_model(instance, warehouse, BaseModelSpec(SMOL))
        seed_dataset("evil_numbers", TINY_EXAMPLES)
        result = dg.materialize(
            [fine_tuned_model],
            instance=instance,
            resources={"warehouse": warehouse, "local_finetuner": tuner, "openai_finetuner": OpenAIFineTuner()},
            partition_key="smollm2-135m-instruct|evil_numbers",
        )
    assert result.success
    (row,) = warehouse.table("models", where={"condition": "evil_numbers"}).iter_rows(named=True)
    recorded = json.loads(row["hyperparameters"])
    assert recorded["n_epochs"] == 2 and recorded["max_examples"] == 2
    assert recorded["per_condition"] == {"condition": "evil_numbers", "from_paper": {}, "overrides": {"n_epochs": 2}}
    manifest = json.loads((Path(row["model_ref"]) / "manifest.json").read_text())
    assert manifest["hyperparameters"]["n_epochs"] == 2 and manifest["steps"] == 2  # 2 examples a step, 2 epochs
