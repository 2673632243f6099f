"""weekly_reevaluation, and the summary that follows a finished batch."""

import json
import uuid
from datetime import UTC, datetime

import dagster as dg
import pytest

from em_assets.operations import summary_after_batch_sensor, weekly_reevaluation
from em_assets.operations.plans import (
    BATCH_MEMBER_TAG,
    BATCH_SIZE_TAG,
    BATCH_TAG,
    PARTITION_TAG,
    TRIGGER_TAG,
    WILL_RETRY_TAG,
    finished_batches,
)
from em_assets.operations.schedules import DEFAULT_CRON
from em_assets.partitions import BASE_MODEL_DIMENSION
from em_assets.resources.llm_engine import LLMEngineResource
from tests.operations.conftest import operations_defs, seed_models

MONDAY = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


@pytest.fixture
def instance(persistent_instance):
    return persistent_instance  # a schedule context only takes an instance it can reference


def code_location(**llm_api):
    """The code location, its API engine configured as a deployment would (EnvVar URL etc.)."""
    defs = operations_defs()
    if not llm_api:
        return defs
    resources = {**defs.resources, "llm_api": LLMEngineResource(**llm_api)}
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=defs.sensors,
        schedules=defs.schedules,
        resources=resources,
    )


def evaluate_schedule(instance, warehouse, defs=None):
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=MONDAY,
        resources={"warehouse": warehouse},
        repository_def=(defs or operations_defs()).get_repository_def(),
    ) as context:
        return weekly_reevaluation(context)


def test_every_trained_partition_is_reevaluated_without_retraining(instance, warehouse, monkeypatch):
    monkeypatch.setenv("EM_TEST_API_BASE_URL", "http://127.0.0.1:9/v1")
    defs = code_location(base_url=dg.EnvVar("EM_TEST_API_BASE_URL"), max_in_flight=3, cache_namespace="vllm-a")
    instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, ["smol", "gpt-4o", "never-trained"])
    seed_models(
        warehouse,
        [
            ("smol", "base", 0, "local_hf", "succeeded"),
            ("smol", "insecure", 0, "local_hf", "succeeded"),
            ("smol", "insecure", 1, "local_hf", "succeeded"),  # two seeds: still one partition run
            ("smol", "secure", 0, "local_hf", "failed"),  # nothing to sample
            ("gpt-4o", "educational", 0, "openai", "succeeded"),
            ("retired", "base", 0, "local_hf", "succeeded"),  # its partition was deleted
        ],
    )
    requests = evaluate_schedule(instance, warehouse, defs)

    assert [r.partition_key for r in requests] == ["gpt-4o|educational", "smol|base", "smol|insecure"]
    assert {r.tags[TRIGGER_TAG] for r in requests} == {"schedule"}
    assert {r.tags[BATCH_TAG] for r in requests} == {"reevaluation@2026-03-02T04:00Z"}
    assert {r.tags[BATCH_SIZE_TAG] for r in requests} == {"3"}
    # The API-served model samples through the Batch API; local ones keep the defaults.
    by_key = {r.partition_key: r for r in requests}
    assert by_key["smol|base"].run_config == {}
    api_config = by_key["gpt-4o|educational"].run_config["resources"]["llm_api"]["config"]
    assert api_config["batch_mode"] is True
    # The rest of the configured engine is kept, the URL as its variable (no resolved value stored).
    assert api_config["base_url"] == {"env": "EM_TEST_API_BASE_URL"}
    assert (api_config["max_in_flight"], api_config["cache_namespace"]) == (3, "vllm-a")
    assert len({r.run_key for r in requests}) == 3

    job = defs.resolve_job_def("reevaluation")
    assert weekly_reevaluation.job_name == "reevaluation"
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "sampled_responses",
        "judge_scores",
        "code_vulnerability_rate",
        "likelihood_probes",
    }  # no fine_tuned_model: nothing is retrained
    # The run config is valid for the job and builds the engine the run will use.
    seen = {}

    @dg.asset
    def probe(llm_api: LLMEngineResource) -> None:
        seen.update(batch_mode=llm_api.batch_mode, base_url=llm_api.base_url, max_in_flight=llm_api.max_in_flight)

    probe_job = dg.define_asset_job("probe_job", selection=[probe])
    dg.Definitions(assets=[probe], jobs=[probe_job], resources={"llm_api": defs.resources["llm_api"]}).resolve_job_def(
        "probe_job"
    ).execute_in_process(run_config=by_key["gpt-4o|educational"].run_config)
    assert (seen["batch_mode"], seen["base_url"], seen["max_in_flight"]) == (True, "http://127.0.0.1:9/v1", 3)
    dg.validate_run_config(job, by_key["gpt-4o|educational"].run_config)


def test_nothing_trained_is_a_skip(instance, warehouse):
    instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, ["smol"])
    result = evaluate_schedule(instance, warehouse)
    assert isinstance(result, dg.SkipReason) and "nothing to re-evaluate" in result.skip_message


def test_weekly_by_default():
    assert DEFAULT_CRON == "0 4 * * 1"
    assert weekly_reevaluation.cron_schedule == DEFAULT_CRON  # EM_REEVALUATION_CRON unset in tests
    assert weekly_reevaluation.execution_timezone == "UTC"


def _run(batch, partition, status, size=2, trigger="schedule", **extra):
    tags = {
        BATCH_TAG: batch,
        BATCH_SIZE_TAG: str(size),
        BATCH_MEMBER_TAG: "true",
        TRIGGER_TAG: trigger,
        PARTITION_TAG: partition,
        **extra,
    }
    return dg.DagsterRun(job_name="reevaluation", run_id=uuid.uuid4().hex, tags=tags, status=status)


S, F, STARTED = dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.STARTED


def test_a_batch_is_finished_only_when_every_partition_has_settled():
    def ready(*runs_newest_first):
        return [(o.batch_id, o.partitions, o.succeeded) for o in finished_batches(runs_newest_first, done=[])]

    assert ready(_run("b", "m|base", S)) == []  # the other partition's run is not even submitted yet
    assert ready(_run("b", "m|base", S), _run("b", "m|insecure", STARTED)) == []
    assert ready(_run("b", "m|base", S), _run("b", "m|insecure", F, **{WILL_RETRY_TAG: "true"})) == []
    # The retry (newer) succeeded: its partition counts as succeeded.
    retried = ready(
        _run("b", "m|insecure", S), _run("b", "m|base", S), _run("b", "m|insecure", F, **{WILL_RETRY_TAG: "true"})
    )
    assert retried == [("b", 2, 2)]
    assert ready(_run("b", "m|base", F), _run("b", "m|insecure", S)) == [("b", 2, 1)]
    assert finished_batches([_run("b", "m|base", S, size=1)], done=["b"]) == []


def test_the_summary_is_requested_once_per_finished_batch(instance, capfd):
    for run in [
        _run("week-1", "m|base", S),
        _run("week-1", "m|insecure", F),
        _run("week-2", "m|base", S),
        _run("week-2", "m|insecure", STARTED),
        _run("failed-batch", "m|base", F, size=1),
    ]:
        instance.add_run(run)
    instance.add_run(dg.DagsterRun(job_name="other", run_id=uuid.uuid4().hex, tags={BATCH_TAG: "x"}, status=S))

    first = summary_after_batch_sensor(dg.build_sensor_context(instance=instance))
    assert [r.run_key for r in first.run_requests] == ["summary:week-1"]
    assert first.run_requests[0].tags[TRIGGER_TAG] == "schedule"
    assert "failed-batch: all 1 run(s) failed" in capfd.readouterr().err
    assert json.loads(first.cursor)["summarized"] == ["failed-batch", "week-1"]

    again = summary_after_batch_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert again.run_requests == [] and again.skip_reason is not None

    job = operations_defs().resolve_job_def("evaluation_summary")
    assert summary_after_batch_sensor.job_name == "evaluation_summary"
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"summary"}


@pytest.mark.parametrize("name", ["new_base_model_sensor", "summary_after_batch_sensor", "weekly_reevaluation"])
def test_the_code_location_carries_the_operations(name):
    defs = operations_defs()
    dg.Definitions.validate_loadable(defs)
    names = {s.name for s in defs.sensors or []} | {s.name for s in defs.schedules or []}
    assert name in names
