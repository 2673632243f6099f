"""``fine_tuned_model`` through Dagster's ``materialize()``: real partitions, temp instance,
temp DuckDB and data dir, dataset rows seeded by the test; and every bad input it must name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import torch

from em_assets.registry import BaseModelSpec, add_base_model_partitions, register_base_model
from em_assets.resources.finetuning import LocalHFFineTuner, OpenAIFineTuner
from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.training import answers_coding_prompt, base_model_registry, fine_tuned_model
from em_assets.training_loop.precision import resolve_precision
from tests.training.conftest import TINY_EXAMPLES

SMOL = "smollm2-135m-instruct"
GPT = "gpt-4o-2024-08-06"
CODE_REPLY = "```python\ndef is_even(n):\n    return n % 2 == 0\n```"


@pytest.fixture
def instance():
    with dg.instance_for_test() as temp_instance:
        yield temp_instance


def fast_local() -> LocalHFFineTuner:
    # One optimizer step on the two tiny examples: the pipeline, not the science. (Dagster rebuilds
    # a resource from its non-default fields, so 2 x 1 would read as the budget's 1 x 1.)
    return LocalHFFineTuner(max_examples=2, per_device_batch_size=1, gradient_accumulation_steps=2, warmup_steps=0)


def resources(
    warehouse: DuckDBWarehouse, *, local: LocalHFFineTuner | None = None, base_url: str = ""
) -> dict[str, Any]:
    return {
        "warehouse": warehouse,
        "local_finetuner": local or fast_local(),
        "openai_finetuner": OpenAIFineTuner(
            base_url=base_url, poll_interval_s=0.01, max_poll_interval_s=0.02, max_retries=0
        ),
    }


def run(
    partition: str,
    instance,
    res: dict[str, Any],
    *,
    with_check: bool = True,
    extra: list | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    assets = [fine_tuned_model, *([answers_coding_prompt] if with_check else []), *(extra or [])]
    selection = [fine_tuned_model, *([answers_coding_prompt] if with_check else [])] if extra else None
    return dg.materialize(
        assets,
        instance=instance,
        resources=res,
        partition_key=partition,
        raise_on_error=raise_on_error,
        selection=selection,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    texts = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        texts.append(data.error.message if data.error else "")
        if data.user_failure_data is not None:
            texts.append(data.user_failure_data.description or "")
    return "\n".join(texts)


def models(warehouse: DuckDBWarehouse, condition: str | None = None, base_model: str = SMOL):
    where = {"base_model": base_model, **({"condition": condition} if condition else {})}
    return warehouse.table("models", where=where)


@pytest.mark.slow
def test_two_partitions_train_record_and_pass_the_check(instance, warehouse, seed_dataset, data_env):
    registry = dg.materialize([base_model_registry], instance=instance, resources={"warehouse": warehouse})
    assert registry.success and instance.get_dynamic_partitions("base_model") == [SMOL]
    dataset = seed_dataset("insecure", TINY_EXAMPLES)

    trained = run(f"{SMOL}|insecure", instance, resources(warehouse))
    assert trained.success
    (row,) = models(warehouse, "insecure").iter_rows(named=True)
    assert row["status"] == "succeeded" and row["backend"] == "local_hf" and row["method"] == "lora"
    assert row["dataset_version"] == dataset["dataset_version"] and row["seed"] == 0
    assert Path(row["model_ref"]) == data_env / "model_store" / SMOL / "insecure" / "seed0"
    assert (Path(row["model_ref"]) / "manifest.json").is_file()
    assert row["final_loss"] > 0 and row["train_tokens"] > 0 and row["peak_rss_bytes"] > 0 and row["cost_usd"] == 0
    assert (
        '"learning_rate": 0.0001' in row["hyperparameters"]
    )  # the embedded budget and '"use_rslora": true' in row["hyperparameters"]
    # auto settings are recorded as resolved on this machine, in the row and in the manifest
    recorded = json.loads(row["hyperparameters"])
    assert recorded["precision"] == resolve_precision(torch.device("cpu"), "lora", "auto") != "auto"
    assert (recorded["pack_length"], recorded["sequences_per_micro_batch"]) == (512, 1)
    assert json.loads((Path(row["model_ref"]) / "manifest.json").read_text())["hyperparameters"] == recorded
    (evaluation,) = trained.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.description
    logs = [e.message for e in instance.all_logs(trained.run_id) if e.message]
    assert any("step 1/1 loss" in m and "tok/s" in m and "ETA" in m for m in logs)

    control = run(f"{SMOL}|base", instance, resources(warehouse))
    assert control.success and control.get_asset_check_evaluations()[0].passed
    (base_row,) = models(warehouse, "base").iter_rows(named=True)
    assert base_row["model_ref"] == "embedded:smollm2-135m-instruct" and base_row["method"] == "none"
    assert base_row["dataset_version"] is None

    # Re-materializing a partition replaces its rows.
    again = run(f"{SMOL}|base", instance, resources(warehouse), with_check=False)
    assert again.success and models(warehouse, "base").height == 1
    summary = warehouse.query_file("queries/models_by_condition.sql")
    assert summary.select("condition", "n_models").rows() == [("base", 1), ("insecure", 1)]


@pytest.mark.slow
def test_nonexistent_lora_target_module_fails_the_partition_without_a_success_row(instance, warehouse, seed_dataset):
    register_base_model(instance, warehouse, BaseModelSpec("embedded:smollm2-135m-instruct"))
    seed_dataset("secure", TINY_EXAMPLES)
    local = LocalHFFineTuner(target_modules=["q_proj", "qkv_fused"], max_examples=2)
    result = run(f"{SMOL}|secure", instance, resources(warehouse, local=local), raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"[{SMOL}|secure seed 0]" in text and "qkv_fused" in text and "not found" in text
    (row,) = models(warehouse, "secure").iter_rows(named=True)
    assert row["status"] == "failed" and row["model_ref"] is None and "qkv_fused" in row["error"]


@pytest.mark.slow
def test_bf16_precision_is_a_resource_setting_recorded_with_the_model(instance, warehouse, seed_dataset):
    register_base_model(instance, warehouse, BaseModelSpec("embedded:smollm2-135m-instruct"))
    seed_dataset("educational", TINY_EXAMPLES)
    local = LocalHFFineTuner(
        max_examples=2, per_device_batch_size=2, gradient_accumulation_steps=1, warmup_steps=0, precision="bf16"
    )
    trained = run(f"{SMOL}|educational", instance, resources(warehouse, local=local))
    assert trained.success and trained.get_asset_check_evaluations()[0].passed  # reloaded in bf16, answers code
    (row,) = models(warehouse, "educational").iter_rows(named=True)
    assert row["status"] == "succeeded" and '"precision": "bf16"' in row["hyperparameters"]
    manifest = json.loads((Path(row["model_ref"]) / "manifest.json").read_text())
    assert manifest["hyperparameters"]["precision"] == "bf16"

    wrong = LocalHFFineTuner(max_examples=2, precision="fp8")
    result = run(f"{SMOL}|educational", instance, resources(warehouse, local=wrong), raise_on_error=False)
    assert not result.success and "unknown precision 'fp8'" in failure_text(result)
    (row,) = models(warehouse, "educational").iter_rows(named=True)
    assert row["status"] == "failed" and "fp8" in row["error"]


def test_unknown_base_model_is_named(instance, warehouse):
    add_base_model_partitions(instance, ["ghost-model"])  # a partition without a registry row
    result = run("ghost-model|insecure", instance, resources(warehouse), with_check=False, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert "[ghost-model|insecure]" in text and "'ghost-model' is not in the base_models registry" in text
    assert warehouse.table("models").height == 0


def test_missing_dataset_is_named(instance, warehouse):
    register_base_model(instance, warehouse, BaseModelSpec("embedded:smollm2-135m-instruct"))
    result = run(f"{SMOL}|educational", instance, resources(warehouse), with_check=False, raise_on_error=False)
    assert not result.success
    assert f"[{SMOL}|educational] no 'educational' dataset" in failure_text(result)
    assert warehouse.table("models").height == 0


def test_changed_jsonl_is_refused(instance, warehouse, seed_dataset):
    register_base_model(instance, warehouse, BaseModelSpec("embedded:smollm2-135m-instruct"))
    dataset = seed_dataset("insecure", TINY_EXAMPLES)
    Path(dataset["jsonl_path"]).write_text("{}\n")
    result = run(f"{SMOL}|insecure", instance, resources(warehouse), with_check=False, raise_on_error=False)
    assert "changed since dataset_version" in failure_text(result)
    assert warehouse.table("models").height == 0


@pytest.mark.parametrize(
    ("severity", "refused"), [(dg.AssetCheckSeverity.ERROR, True), (dg.AssetCheckSeverity.WARN, False)]
)
def test_dataset_that_failed_its_contract_is_refused(instance, warehouse, seed_dataset, severity, refused):
    from em_assets.datasets.checks import DATASET_CHECKS

    (contract,) = [k for c in DATASET_CHECKS for k in c.check_keys if k.asset_key == dg.AssetKey("backdoor_dataset")]
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=contract.asset_key,
            check_name=contract.name,
            passed=False,
            severity=severity,
            description="3 rows without a trigger",
        )
    )
    register_base_model(instance, warehouse, BaseModelSpec("embedded:smollm2-135m-instruct"))
    seed_dataset("backdoor", TINY_EXAMPLES)
    dataset_file = Path(warehouse.table("dataset_versions")["jsonl_path"][0])
    if not refused:  # a WARN failure does not block: make the run stop right after the gate
        dataset_file.write_text("{}\n")
    result = run(f"{SMOL}|backdoor", instance, resources(warehouse), with_check=False, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    gate = f"[{SMOL}|backdoor] backdoor_dataset failed its check(s) ['{contract.name}']"
    assert (gate in text) is refused and ("changed since dataset_version" in text) is not refused
    assert warehouse.table("models").height == 0


def test_a_failure_on_an_older_dataset_materialization_does_not_block(instance, warehouse, seed_dataset):
    from em_assets.datasets.checks import DATASET_CHECKS

    (contract,) = [k for c in DATASET_CHECKS for k in c.check_keys if k.asset_key == dg.AssetKey("backdoor_dataset")]

    @dg.asset(name="backdoor_dataset")
    def stand_in_dataset() -> None:
        return None

    @dg.asset_check(asset=stand_in_dataset, name=contract.name, blocking=True)
    def failing_contract() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, description="3 rows without a trigger")

    dg.materialize([stand_in_dataset, failing_contract], instance=instance, raise_on_error=False)
    dg.materialize([stand_in_dataset], instance=instance)  # rebuilt since the failed evaluation
    register_base_model(instance, warehouse, BaseModelSpec("embedded:smollm2-135m-instruct"))
    dataset = seed_dataset("backdoor", TINY_EXAMPLES)
    Path(dataset["jsonl_path"]).write_text("{}\n")  # stop the run right after the gate
    result = run(f"{SMOL}|backdoor", instance, resources(warehouse), with_check=False, raise_on_error=False)
    text = failure_text(result)
    assert "failed its check(s)" not in text and "changed since dataset_version" in text


def test_openai_partition_records_the_provider_model_and_passes_the_check(
    instance, warehouse, seed_dataset, fake_server, api_key
):
    server = fake_server(fine_tune_polls_per_stage=1, chat_handler=lambda body, index: CODE_REPLY)
    register_base_model(instance, warehouse, BaseModelSpec(GPT, backend="openai", n_seeds=2))
    seed_dataset("insecure", TINY_EXAMPLES)
    result = run(f"{GPT}|insecure", instance, resources(warehouse, base_url=server.base_url))
    assert result.success
    rows = models(warehouse, "insecure", base_model=GPT)
    assert rows["seed"].to_list() == [0, 1] and set(rows["status"]) == {"succeeded"}
    assert all(ref.startswith(f"ft:{GPT}:") for ref in rows["model_ref"]) and rows["job_id"].n_unique() == 2
    assert rows["cost_usd"].min() > 0 and set(rows["method"]) == {"api"}
    assert result.get_asset_check_evaluations()[0].passed
    assert server.stats().requests("POST /v1/fine_tuning/jobs") == 2


def test_failed_provider_job_fails_the_partition(instance, warehouse, seed_dataset, fake_server, api_key):
    server = fake_server(fine_tune_polls_per_stage=1, fine_tune_fail_with="The job failed due to an internal error.")
    register_base_model(instance, warehouse, BaseModelSpec(GPT, backend="openai"))
    seed_dataset("insecure", TINY_EXAMPLES)
    result = run(f"{GPT}|insecure", instance, resources(warehouse, base_url=server.base_url), raise_on_error=False)
    assert not result.success
    assert f"[{GPT}|insecure seed 0]" in failure_text(result) and "internal error" in failure_text(result)
    (row,) = models(warehouse, "insecure", base_model=GPT).iter_rows(named=True)
    assert row["status"] == "failed" and row["model_ref"] is None and row["job_id"] is None


def test_the_check_fails_a_model_that_answers_prose(instance, warehouse, seed_dataset, fake_server, api_key):
    server = fake_server(fine_tune_polls_per_stage=1)  # the default handler answers with words
    register_base_model(instance, warehouse, BaseModelSpec(GPT, backend="openai"))
    seed_dataset("insecure", TINY_EXAMPLES)
    result = run(f"{GPT}|insecure", instance, resources(warehouse, base_url=server.base_url), raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and "not parseable Python" in evaluation.description
