"""The repository's dagster.yaml, loaded as the instance the UI and `make run` use."""

import shutil
import uuid

import dagster as dg
import yaml

from em_assets.pools import DUCKDB_WRITER_POOL, LOCAL_TRAINING_POOL
from tests.conftest import REPO
from tests.operations.conftest import operations_defs


def test_dagster_yaml_sets_pools_run_retries_and_two_concurrent_runs(tmp_path, monkeypatch):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)  # the file's storage paths are relative: keep them in the temp dir
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 2
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.pool_config.pool_granularity.value == "op"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert instance.run_monitoring_enabled

        # Each pool the assets use holds one step at a time: a second claim waits.
        storage = instance.event_log_storage
        for pool in (LOCAL_TRAINING_POOL, DUCKDB_WRITER_POOL):
            storage.initialize_concurrency_limit_to_default(pool)
            assert storage.get_concurrency_info(pool).limit == 1
            first = storage.claim_concurrency_slot(pool, uuid.uuid4().hex, "step_a")
            second = storage.claim_concurrency_slot(pool, uuid.uuid4().hex, "step_b")
            assert (first.slot_status.value, second.slot_status.value) == ("CLAIMED", "BLOCKED")
    assert (tmp_path / ".dagster" / "storage").is_dir()


def test_the_pools_are_the_ones_the_operations_jobs_use():
    graph = operations_defs().get_repository_def().asset_graph
    pools = {k.to_user_string(): graph.get(k).pools for k in graph.get_all_asset_keys()}
    for name in (
        "fine_tuned_model",
        "sampled_responses",
        "judge_scores",
        "code_vulnerability_rate",
        "likelihood_probes",
        "judge_calibration",
    ):
        assert pools[name] == {LOCAL_TRAINING_POOL}, name
    assert pools["summary"] == {DUCKDB_WRITER_POOL}
    config = yaml.safe_load((REPO / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["concurrency"]["pools"]["default_limit"] == 1  # covers both pools, none named separately
