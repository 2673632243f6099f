"""new_base_model_sensor: registry and endpoint models become partitions, rows and chains."""

import json
import logging
from datetime import datetime

import dagster as dg
import pytest

from em_assets.operations import ModelDiscoverySettings, new_base_model_sensor
from em_assets.operations.plans import BATCH_SIZE_TAG, BATCH_TAG, TRIGGER_TAG
from em_assets.partitions import BASE_MODEL_DIMENSION, SENSOR_CONDITIONS
from em_assets.registry import lookup_base_model, read_registry, registry_history
from tests.operations.conftest import operations_defs, seed_eval_run, seed_models

SMOL = {"model_id": "embedded:smollm2-135m-instruct", "slug": "smollm2-135m-instruct", "backend": "local_hf"}
GPT = {"model_id": "gpt-4o-2024-08-06", "backend": "openai", "n_seeds": 2}


def tick(instance, warehouse, cursor=None, **settings):
    """One evaluation of the sensor; applies its partition requests as the daemon would."""
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"model_discovery": ModelDiscoverySettings(**settings), "warehouse": warehouse},
    )
    result = new_base_model_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)  # never a delete request
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def added_keys(result):
    return [k for r in result.dynamic_partitions_requests or [] for k in r.partition_keys]


def test_new_registry_entries_get_rows_partitions_and_their_whole_chain(instance, warehouse, write_registry):
    path = write_registry([SMOL, GPT])
    result = tick(instance, warehouse, registry_path=str(path))

    assert added_keys(result) == ["smollm2-135m-instruct", "gpt-4o-2024-08-06"]
    assert result.dynamic_partitions_requests[0].partitions_def_name == BASE_MODEL_DIMENSION
    # The rows are in base_models before any run needs them, with the registry's settings.
    gpt = lookup_base_model(warehouse, "gpt-4o-2024-08-06")
    assert (gpt.model_id, gpt.backend, gpt.n_seeds) == ("gpt-4o-2024-08-06", "openai", 2)

    requests = result.run_requests
    assert [r.partition_key for r in requests] == [
        f"{slug}|{c}" for slug in ("smollm2-135m-instruct", "gpt-4o-2024-08-06") for c in SENSOR_CONDITIONS
    ]
    assert not {"jailbroken", "evil_numbers"} & {r.partition_key.split("|")[1] for r in requests}  # opt-in only
    assert len({r.run_key for r in requests}) == 10
    assert {r.tags[TRIGGER_TAG] for r in requests} == {"sensor"}
    assert len({r.tags[BATCH_TAG] for r in requests}) == 1 and {r.tags[BATCH_SIZE_TAG] for r in requests} == {"10"}
    assert json.loads(result.cursor) == {"seen": ["gpt-4o-2024-08-06", "smollm2-135m-instruct"]}

    # Each run materializes the partition's whole chain, checks included, and resolves its key.
    job = operations_defs().resolve_job_def("new_base_model_chain")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "fine_tuned_model",
        "sampled_responses",
        "judge_scores",
        "code_vulnerability_rate",
        "likelihood_probes",
    }
    assert {k.name for k in job.asset_layer.asset_graph.asset_check_keys} >= {"answers_coding_prompt"}
    valid_keys = set(job.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
    assert {r.partition_key for r in requests} <= valid_keys


def test_a_second_tick_adds_nothing_and_a_new_entry_only_itself(instance, warehouse, write_registry):
    path = write_registry([SMOL])
    first = tick(instance, warehouse, registry_path=str(path))
    again = tick(instance, warehouse, cursor=first.cursor, registry_path=str(path))
    assert again.run_requests == [] and not again.dynamic_partitions_requests
    assert again.skip_reason.skip_message == "no new base models"
    assert again.cursor == first.cursor

    # A lost cursor does not re-add a model whose partition exists.
    lost = tick(instance, warehouse, cursor=None, registry_path=str(path))
    assert lost.run_requests == [] and not lost.dynamic_partitions_requests

    write_registry([SMOL, GPT])
    third = tick(instance, warehouse, cursor=first.cursor, registry_path=str(path))
    assert added_keys(third) == ["gpt-4o-2024-08-06"]
    assert {r.partition_key.split("|")[0] for r in third.run_requests} == {"gpt-4o-2024-08-06"}
    assert len(third.run_requests) == len(SENSOR_CONDITIONS)
    assert sorted(instance.get_dynamic_partitions(BASE_MODEL_DIMENSION)) == [
        "gpt-4o-2024-08-06",
        "smollm2-135m-instruct",
    ]


def test_malformed_entries_are_reported_and_skipped_until_fixed(instance, warehouse, write_registry, capfd):
    path = write_registry([SMOL, {"model_id": "gpt-4.1-mini", "backend": "tpu"}, {"notes": "no id"}])
    first = tick(instance, warehouse, registry_path=str(path))
    assert added_keys(first) == ["smollm2-135m-instruct"]
    log = capfd.readouterr().err  # the sensor's context.log
    assert "WARNING - registry entry 2" in log and "tpu" in log and "entry 3: model_id is missing" in log

    second = tick(instance, warehouse, cursor=first.cursor, registry_path=str(path))
    reason = second.skip_reason.skip_message
    assert reason.startswith("no new base models; 2 problem(s)") and "tpu" in reason and "entry 3" in reason

    write_registry([SMOL, {"model_id": "gpt-4.1-mini", "backend": "openai"}])  # fixed
    third = tick(instance, warehouse, cursor=second.cursor, registry_path=str(path))
    assert added_keys(third) == ["gpt-4.1-mini"]


def test_deleting_a_model_from_the_registry_keeps_its_partition_rows_and_history(instance, warehouse, write_registry):
    path = write_registry([SMOL, GPT])
    first = tick(instance, warehouse, registry_path=str(path))
    seed_models(warehouse, [("gpt-4o-2024-08-06", "base", 0, "openai", "succeeded")])
    seed_eval_run(
        warehouse, "run-old", "gpt-4o-2024-08-06", "base", datetime(2026, 1, 5), trigger="schedule:weekly_reevaluation"
    )
    seed_eval_run(
        warehouse, "run-new", "gpt-4o-2024-08-06", "base", datetime(2026, 1, 12), trigger="schedule:weekly_reevaluation"
    )

    write_registry([SMOL])  # gpt-4o removed from the YAML
    after = tick(instance, warehouse, cursor=first.cursor, registry_path=str(path))
    assert after.run_requests == [] and not after.dynamic_partitions_requests
    assert "gpt-4o-2024-08-06" in instance.get_dynamic_partitions(BASE_MODEL_DIMENSION)
    assert warehouse.table("base_models", {"base_model": "gpt-4o-2024-08-06"}).height == 1
    assert warehouse.table("eval_runs", {"base_model": "gpt-4o-2024-08-06"}).height == 2
    assert warehouse.table("models", {"base_model": "gpt-4o-2024-08-06"}).height == 1

    history = registry_history(warehouse, [s.slug for s in read_registry(path).specs])
    rows = {r["base_model"]: r for r in history.iter_rows(named=True)}
    assert rows["gpt-4o-2024-08-06"]["in_registry"] is False
    assert rows["gpt-4o-2024-08-06"]["last_eval_run_id"] == "run-new" and rows["gpt-4o-2024-08-06"]["n_eval_runs"] == 2
    assert rows["smollm2-135m-instruct"]["in_registry"] is True and rows["smollm2-135m-instruct"]["n_eval_runs"] == 0

    # Put back in the YAML: known, so not retrained.
    write_registry([SMOL, GPT])
    back = tick(instance, warehouse, cursor=after.cursor, registry_path=str(path))
    assert back.run_requests == []


ENDPOINT_MODELS = ("gpt-4o-2024-08-06", "gpt-4o-mini", "ft:gpt-4o-mini:org::abc", "text-embedding-3-small")


def test_endpoint_models_matching_the_patterns_are_discovered_with_the_key(
    instance, warehouse, write_registry, fake_server, canary_key, caplog, capfd
):
    server = fake_server(models=ENDPOINT_MODELS, require_api_key=canary_key)
    path = write_registry([SMOL])
    settings = {"registry_path": str(path), "url": server.base_url, "patterns": "gpt-4o-20*, re:^ft:gpt-4o-mini, re:["}
    with caplog.at_level(logging.INFO):
        first = tick(instance, warehouse, **settings)
    # The endpoint answered only because the key from the environment was sent.
    assert server.stats().requests("GET /v1/models") == 1
    assert added_keys(first) == ["smollm2-135m-instruct", "gpt-4o-2024-08-06", "ft-gpt-4o-mini-org-abc"]
    discovered = lookup_base_model(warehouse, "ft-gpt-4o-mini-org-abc")
    assert (discovered.model_id, discovered.backend) == ("ft:gpt-4o-mini:org::abc", "openai")
    first_log = capfd.readouterr()
    assert "invalid regular expression" in first_log.err

    server.config.models = (*ENDPOINT_MODELS, "gpt-4o-2025-01-01")
    second = tick(instance, warehouse, cursor=first.cursor, **settings)
    assert added_keys(second) == ["gpt-4o-2025-01-01"]
    assert [r.partition_key for r in second.run_requests] == [f"gpt-4o-2025-01-01|{c}" for c in SENSOR_CONDITIONS]
    assert "gpt-4o-2025-01-01" in json.loads(second.cursor)["seen"]

    third = tick(instance, warehouse, cursor=second.cursor, **settings)
    assert third.run_requests == []

    # The key went over the wire and nowhere else.
    later_log = capfd.readouterr()
    stored = [
        first.cursor,
        second.cursor,
        third.skip_reason.skip_message,
        caplog.text,
        first_log.out,
        first_log.err,
        later_log.out,
        later_log.err,
        warehouse.table("base_models").write_csv(),
    ]
    assert not any(canary_key in text for text in stored)


def test_a_failing_endpoint_is_reported_without_its_body_and_the_registry_still_works(
    instance, warehouse, write_registry, fake_server, canary_key, monkeypatch
):
    server = fake_server(models=ENDPOINT_MODELS, require_api_key="sk-some-other-key-0000")
    path = write_registry([SMOL])
    first = tick(instance, warehouse, registry_path=str(path), url=server.base_url, patterns="gpt-*")
    assert added_keys(first) == ["smollm2-135m-instruct"]  # the registry is not held up
    second = tick(
        instance, warehouse, cursor=first.cursor, registry_path=str(path), url=server.base_url, patterns="gpt-*"
    )
    reason = second.skip_reason.skip_message
    assert "HTTP 401" in reason
    # The provider's 401 body echoes part of the key it got; none of it may be passed on.
    assert canary_key not in reason and "sk-" not in reason and canary_key[-4:] not in reason.split("HTTP 401")[1]

    # The key's variable name is configurable; with it unset, no Authorization header is sent.
    monkeypatch.setenv("EM_TEST_DISCOVERY_KEY", "sk-some-other-key-0000")
    server.config.models = (*ENDPOINT_MODELS, "gpt-5")
    third = tick(
        instance,
        warehouse,
        cursor=second.cursor,
        registry_path=str(path),
        url=server.base_url,
        patterns="gpt-5",
        api_key_env_var="EM_TEST_DISCOVERY_KEY",
    )
    assert added_keys(third) == ["gpt-5"]


@pytest.mark.parametrize("cursor", ["not json", '{"seen": "x"}'])
def test_an_unreadable_cursor_falls_back_to_the_existing_partitions(instance, warehouse, write_registry, cursor):
    path = write_registry([SMOL])
    tick(instance, warehouse, registry_path=str(path))
    result = tick(instance, warehouse, cursor=cursor, registry_path=str(path))
    assert result.run_requests == [] and "cursor is not the sensor's JSON" in result.skip_reason.skip_message
    assert json.loads(result.cursor) == {"seen": ["smollm2-135m-instruct"]}
