"""The Pipes path: ``PipesSubprocessClient`` runs ``em_assets.pipes_entrypoints.train`` — the local
backend's own training code — on the real embedded SmolLM2, inside ``materialize()``."""

import json
from pathlib import Path

import dagster as dg
import pytest

from em_assets.core.training_data import file_sha256
from em_assets.resources.artifacts import LocalArtifactStore
from em_assets.resources.finetuning import FineTuneRequest
from em_assets.resources.remote_training import PipesFineTuner, PipesJobLauncher
from tests.scaleout.conftest import TINY_CHATS, write_jsonl
from tests.training.conftest import seed_dataset  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

BASE = "embedded:smollm2-135m-instruct"


def tiny_tuner(store: LocalArtifactStore, **overrides) -> PipesFineTuner:
    """Two optimizer steps (4 examples, batch 2), short sequences, a small adapter: seconds on CPU.
    One torch thread: on two cores shared with other jobs, two threads measured ~10x slower."""
    settings = dict(
        max_examples=4,
        per_device_batch_size=1,  # 1 x 2, not 2 x 1: Dagster drops fields at their default (2)
        gradient_accumulation_steps=2,
        warmup_steps=0,
        max_length=96,
        pack_length=192,
        lora_r=8,
        lora_alpha=16,
        learning_rate=1e-4,
        num_threads=1,
    )
    settings.update(overrides)
    return PipesFineTuner(job_launcher=PipesJobLauncher(launcher="subprocess"), artifact_store=store, **settings)


@dg.asset
def tiny_remote_model(context: dg.AssetExecutionContext, remote_finetuner: PipesFineTuner) -> dg.MaterializeResult:
    jsonl = Path(remote_finetuner.artifact_store.root) / "incoming" / "train.jsonl"
    request = FineTuneRequest(
        partition="smollm2-135m-instruct|insecure",
        base_model="smollm2-135m-instruct",
        base_model_id=BASE,
        condition="insecure",
        seed=3,
        dataset_version=file_sha256(jsonl),
        jsonl_path=str(jsonl),
    )
    result = remote_finetuner.fine_tune(request, log=context.log.info)
    reported = result.details["pipes_metadata"]
    return dg.MaterializeResult(
        metadata={
            "model_ref": result.model_ref,
            "final_loss": result.final_loss,
            "steps": reported["steps"],
            "tokens_per_second": reported["tokens_per_second"],
            "loss_curve": dg.MetadataValue.json(reported["loss_curve"]),
        }
    )


def test_pipes_training_reports_metrics_and_stores_the_adapter(tmp_path, data_env):
    store = LocalArtifactStore(root=str(tmp_path / "store"))
    write_jsonl(tmp_path / "store" / "incoming" / "train.jsonl", TINY_CHATS)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [tiny_remote_model], instance=instance, resources={"remote_finetuner": tiny_tuner(store)}
        )
        assert result.success
        metadata = {
            k: v.value for k, v in result.asset_materializations_for_node("tiny_remote_model")[0].metadata.items()
        }
        logs = [e.message for e in instance.all_logs(result.run_id) if e.message]

    model_dir = tmp_path / "store" / "model_store" / "smollm2-135m-instruct" / "insecure" / "seed3"
    assert metadata["model_ref"] == str(model_dir)
    assert metadata["steps"] == 2 and len(metadata["loss_curve"]) == 2
    assert metadata["final_loss"] == metadata["loss_curve"][-1] > 0 and metadata["tokens_per_second"] > 0
    # The stored folder is a model-store folder: adapter + manifest naming the base and seed.
    assert {"adapter_model.safetensors", "adapter_config.json", "manifest.json"} <= {
        p.name for p in model_dir.iterdir()
    }
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["base_model_id"] == BASE and manifest["seed"] == 3 and manifest["steps"] == 2
    assert json.loads((model_dir / "adapter_config.json").read_text())["r"] == 8
    # The dataset was staged content-addressed in the store, and progress came through Pipes logs.
    version = file_sha256(tmp_path / "store" / "incoming" / "train.jsonl")
    assert (tmp_path / "store" / "datasets" / "insecure" / f"{version}.jsonl").is_file()
    assert any("step 2/2 loss" in m and "tok/s" in m for m in logs), logs


def test_fine_tuned_model_runs_through_pipes_unchanged(warehouse, seed_dataset, data_env):
    """Binding a PipesFineTuner to ``local_finetuner`` is all the wiring ``fine_tuned_model`` needs:
    a success records the stored model and the metrics reported through Pipes; a training failure
    in the remote process lands in the ``models`` row with its cause."""
    from em_assets.registry import BaseModelSpec, register_base_model
    from em_assets.resources.finetuning import OpenAIFineTuner
    from em_assets.training import fine_tuned_model

    seed_dataset("insecure", TINY_CHATS)
    seed_dataset("secure", TINY_CHATS)
    store = LocalArtifactStore()  # the data dir, as in the local profile

    def run(partition: str, tuner: PipesFineTuner) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [fine_tuned_model],
            instance=instance,
            partition_key=partition,
            raise_on_error=False,
            resources={"warehouse": warehouse, "local_finetuner": tuner, "openai_finetuner": OpenAIFineTuner()},
        )

    with dg.instance_for_test() as instance:
        register_base_model(instance, warehouse, BaseModelSpec(BASE))
        trained = run("smollm2-135m-instruct|insecure", tiny_tuner(store))
        failed = run("smollm2-135m-instruct|secure", tiny_tuner(store, target_modules=["q_proj", "qkv_fused"]))

    assert trained.success
    (row,) = warehouse.table("models", where={"condition": "insecure"}).iter_rows(named=True)
    assert row["status"] == "succeeded" and row["backend"] == "local_hf" and row["method"] == "lora"
    # The same model-store folder the in-process backend would have written.
    assert row["model_ref"] == str(data_env / "model_store" / "smollm2-135m-instruct" / "insecure" / "seed0")
    assert (Path(row["model_ref"]) / "adapter_model.safetensors").is_file()
    assert row["final_loss"] > 0 and row["train_tokens"] > 0 and row["train_seconds"] > 0
    assert json.loads(row["hyperparameters"])["lora_r"] == 8

    assert not failed.success
    (row,) = warehouse.table("models", where={"condition": "secure"}).iter_rows(named=True)
    assert row["status"] == "failed" and row["model_ref"] is None
    assert "[smollm2-135m-instruct|secure seed 0]" in row["error"] and "qkv_fused" in row["error"]
