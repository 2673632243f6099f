"""The CLI frees what a killed run left behind, so the next `make run` does not hang on a pool."""

import subprocess

import dagster as dg

from em_assets.cli import ENTRYPOINT_TAG, PID_TAG, release_abandoned_runs


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_abandoned_cli_run_is_failed_and_its_slot_freed(tmp_path):
    with dg.instance_for_test(
        temp_dir=str(tmp_path), overrides={"concurrency": {"pools": {"default_limit": 1}}}
    ) as instance:

        def started_run(run_id, pid):
            instance.add_run(
                dg.DagsterRun(
                    job_name="__ephemeral_asset_job__",
                    run_id=run_id,
                    status=dg.DagsterRunStatus.STARTED,
                    tags={ENTRYPOINT_TAG: "cli", PID_TAG: str(pid)},
                )
            )
            instance.event_log_storage.claim_concurrency_slot("local_training", run_id, "fine_tuned_model")

        started_run("dead000000000000000000000000000000000", _dead_pid())
        alive_pid = subprocess.Popen(["sleep", "30"])
        try:
            instance.event_log_storage.set_concurrency_slots("other_pool", 1)
            instance.add_run(
                dg.DagsterRun(
                    job_name="__ephemeral_asset_job__",
                    run_id="alive00000000000000000000000000000000",
                    status=dg.DagsterRunStatus.STARTED,
                    tags={ENTRYPOINT_TAG: "cli", PID_TAG: str(alive_pid.pid)},
                )
            )
            instance.event_log_storage.claim_concurrency_slot(
                "other_pool", "alive00000000000000000000000000000000", "x"
            )
            assert release_abandoned_runs(instance) == ["dead000000000000000000000000000000000"]
        finally:
            alive_pid.kill()
        assert instance.get_run_by_id("dead000000000000000000000000000000000").status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("local_training").claimed_slots == []
        assert instance.get_run_by_id("alive00000000000000000000000000000000").status == dg.DagsterRunStatus.STARTED
        assert len(instance.event_log_storage.get_concurrency_info("other_pool").claimed_slots) == 1
