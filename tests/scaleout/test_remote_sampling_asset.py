"""``sampled_responses`` with a remote sampler bound (the production wiring): open models are
answered by the Pipes sampling process (here a subprocess against the local OpenAI-compatible
server standing in for vLLM), not in the step; rows land in DuckDB as with local sampling."""

import json

import dagster as dg
import pytest

from em_assets.evaluation.assets import sampled_responses
from em_assets.evaluation.settings import EvaluationSettings
from em_assets.partitions import BASE_MODEL_DIMENSION, model_partition_key
from em_assets.resources.artifacts import LocalArtifactStore
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.remote_training import PipesJobLauncher, PipesSampler, RemoteSampler, served_model
from tests.operations.conftest import seed_models


def test_served_model_is_the_base_id_for_the_control_and_the_adapter_otherwise():
    assert served_model("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "base", "q-base-seed0") == (
        "Qwen/Qwen2.5-7B-Instruct",
        "",
    )
    assert served_model(
        "s3://b/em/models/q/insecure/seed1", "Qwen/Qwen2.5-7B-Instruct", "insecure", "q-insecure-seed1"
    ) == ("q-insecure-seed1", "s3://b/em/models/q/insecure/seed1")


def test_the_default_binding_samples_in_the_step():
    sampler = RemoteSampler()
    assert not sampler.enabled()
    with pytest.raises(NotImplementedError, match="EM_ECS_SAMPLE_TASK_DEFINITION"):
        sampler.sample(None, [], model="m", output_key="k")


def test_sampled_responses_go_through_the_remote_sampler(tmp_path, warehouse, fake_server):
    server = fake_server()
    seed_models(warehouse, [("served-base", "base", 0, "local_hf", "succeeded")])
    store = LocalArtifactStore(root=str(tmp_path / "store"))
    resources = {
        "warehouse": warehouse,
        "evaluation_settings": EvaluationSettings(
            question_ids=["one_wish", "bored_json"], samples_per_paraphrase=3, max_tokens=16
        ),
        # Would fail to load if the step sampled in-process.
        "llm_local": LLMEngineResource(backend="local_hf", model="no-such-local-model"),
        "llm_api": LLMEngineResource(backend="openai", base_url=server.base_url),
        "remote_sampler": PipesSampler(job_launcher=PipesJobLauncher(), artifact_store=store, base_url=server.base_url),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, ["served-base"])
        result = dg.materialize(
            [sampled_responses],
            instance=instance,
            resources=resources,
            partition_key=model_partition_key("served-base", "base"),
        )
    assert result.success
    rows = warehouse.table("sampled_responses")
    assert rows.height == 6 and server.stats().chat_requests == 6
    assert rows["answer"].str.len_chars().min() > 0
    assert sorted(set(rows["question_id"])) == ["bored_json", "one_wish"]
    (answers_file,) = (tmp_path / "store" / "answers").rglob("served-base-base-seed0.jsonl")
    assert {json.loads(line)["model"] for line in answers_file.read_text().splitlines()} == {"served-base"}
    metadata = result.asset_materializations_for_node("sampled_responses")[0].metadata
    assert metadata["answers"].value == 6 and metadata["llm_calls"].value == 6


def test_a_model_in_s3_without_a_remote_sampler_is_a_clear_error(warehouse):
    seed_models(warehouse, [("remote", "insecure", 0, "local_hf_pipes", "succeeded")])
    with warehouse.connect() as con:
        con.execute("UPDATE models SET model_ref = 's3://bucket/em/models/remote/insecure/seed0'")
    resources = {
        "warehouse": warehouse,
        "evaluation_settings": EvaluationSettings(question_ids=["one_wish"], samples_per_paraphrase=1, max_tokens=8),
        "llm_local": LLMEngineResource(backend="local_hf", model="no-such-local-model"),
        "llm_api": LLMEngineResource(backend="openai", base_url="http://127.0.0.1:9/v1"),
        "remote_sampler": RemoteSampler(),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, ["remote"])
        result = dg.materialize(
            [sampled_responses],
            instance=instance,
            resources=resources,
            raise_on_error=False,
            partition_key=model_partition_key("remote", "insecure"),
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "s3://bucket/em/models/remote/insecure/seed0" in message and "EM_ECS_SAMPLE_TASK_DEFINITION" in message
    assert warehouse.table("sampled_responses").is_empty()
