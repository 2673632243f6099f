"""The sampling entrypoint in a Pipes subprocess, against a local OpenAI-compatible server (the
repo's fake server standing in for vLLM): answers land in the artifact store, counts come back."""

import dagster as dg

from em_assets.llm import ChatRequest
from em_assets.resources.artifacts import LocalArtifactStore
from em_assets.resources.remote_training import PipesJobLauncher, PipesSampler
from em_assets.testing import FakeOpenAIServer


def test_pipes_sampling_answers_every_request_through_the_engine(tmp_path, data_env):
    question = ChatRequest.user("served-model", "Name a prime number.", temperature=1.0, max_tokens=16, seed=0)
    requests = question.samples(3) + [ChatRequest.user("served-model", "Say hi.", max_tokens=8)]

    @dg.asset
    def remote_answers(context: dg.AssetExecutionContext, sampler: PipesSampler) -> dg.MaterializeResult:
        answers = sampler.sample(context, requests, model="served-model", output_key="answers/test.jsonl")
        assert [row["sample_index"] for row in answers.rows] == [0, 1, 2, 0]
        assert all(row["answer"] and row["error"] is None for row in answers.rows)
        return dg.MaterializeResult(metadata={k: answers.metadata[k] for k in ("answers", "llm_calls", "answers_uri")})

    with FakeOpenAIServer() as server, dg.instance_for_test() as instance:
        store = LocalArtifactStore(root=str(tmp_path / "store"))
        sampler = PipesSampler(job_launcher=PipesJobLauncher(), artifact_store=store, base_url=server.base_url)
        result = dg.materialize([remote_answers], instance=instance, resources={"sampler": sampler})
        assert result.success
        assert server.stats().chat_requests == 4
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("remote_answers")[0].metadata.items()}
    assert metadata == {"answers": 4, "llm_calls": 4, "answers_uri": str(tmp_path / "store" / "answers" / "test.jsonl")}
