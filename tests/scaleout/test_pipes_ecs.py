"""The ECS launch path end to end, with boto's ECS and CloudWatch Logs clients replaced by a stub
that runs the task's container command here: ``PipesECSClient`` builds the task (command and
Pipes env vars as container overrides), the entrypoint writes its Pipes messages to stdout as it
would in a container, and they come back through ``PipesCloudWatchMessageReader``."""

import os
import subprocess
import sys
import threading
import time
from typing import Any

import dagster as dg

from em_assets.llm import ChatRequest
from em_assets.resources.artifacts import LocalArtifactStore
from em_assets.resources.remote_training import PipesJobLauncher, PipesSampler
from em_assets.testing import FakeOpenAIServer

TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/gpu-cluster/0123abcd"


class _Exceptions:
    class ResourceNotFoundException(Exception):
        pass

    class ThrottlingException(Exception):
        pass


class FakeAws:
    """ECS: ``run_task`` starts the container command as a local process with the override env;
    CloudWatch Logs: its stdout lines are the log stream's events."""

    exceptions = _Exceptions
    meta = type("Meta", (), {"region_name": "us-east-1"})()

    def __init__(self) -> None:
        self.run_task_calls: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None

    # -- ECS
    def describe_task_definition(self, taskDefinition: str) -> dict:
        log = {"logDriver": "awslogs", "options": {"awslogs-group": "/em/sample", "awslogs-stream-prefix": "em"}}
        return {"taskDefinition": {"containerDefinitions": [{"name": "sample", "logConfiguration": log}]}}

    def run_task(self, **params: Any) -> dict:
        self.run_task_calls.append(params)
        (override,) = params["overrides"]["containerOverrides"]
        command = [sys.executable if part == "python" else part for part in override["command"]]
        env = {**os.environ, **{e["name"]: e["value"] for e in override["environment"]}}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        return {"tasks": [{"taskArn": TASK_ARN, "containers": [{"name": "sample"}]}]}

    def get_waiter(self, name: str) -> Any:
        assert name == "tasks_stopped"
        return type("Waiter", (), {"wait": lambda _, **kwargs: self.process.wait(timeout=120)})()

    def describe_tasks(self, **params: Any) -> dict:
        container = {"name": "sample", "exitCode": self.process.returncode, "runtimeId": "r1"}
        return {
            "tasks": [
                {
                    "taskArn": TASK_ARN,
                    "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/gpu-cluster",
                    "containers": [container],
                    "stopCode": "EssentialContainerExited",
                }
            ]
        }

    # -- CloudWatch Logs
    def describe_log_streams(self, **params: Any) -> dict:
        assert params["logStreamNamePrefix"] == "em/sample/0123abcd"
        return {"logStreams": [{"logStreamName": params["logStreamNamePrefix"]}]}

    def get_log_events(self, **params: Any) -> dict:
        # dagster-aws's tailing thread calls this in a loop with no pause and checks whether the
        # Pipes session closed only after a batch with events: pause like a network call would,
        # and once the task has exited answer an empty line so the thread sees the close and ends
        # (otherwise it spins for the rest of the test session, holding the GIL).
        time.sleep(0.05)
        start = int(params.get("nextToken") or 0)
        lines = list(self.lines)
        events = [{"message": line.rstrip("\n")} for line in lines[start:]]
        if not events and self.process is not None and self.process.poll() is not None:
            events = [{"message": ""}]
        return {"events": events, "nextForwardToken": str(len(lines))}


def test_sampling_through_the_ecs_launcher(tmp_path, data_env, monkeypatch):
    aws = FakeAws()
    monkeypatch.setattr(PipesJobLauncher, "aws_client", lambda self, service: aws)
    launcher = PipesJobLauncher(
        launcher="ecs",
        ecs_cluster="gpu-cluster",
        ecs_task_definition="em-sample:1",
        ecs_subnets="subnet-a",
        ecs_container_name="sample",
    )
    requests = ChatRequest.user("served", "Name a colour.", max_tokens=8).samples(2)

    @dg.asset
    def ecs_answers(context: dg.AssetExecutionContext, sampler: PipesSampler) -> dg.MaterializeResult:
        answers = sampler.sample(context, requests, model="served", output_key="answers/ecs.jsonl")
        return dg.MaterializeResult(metadata={"answers": len(answers.rows), "llm_calls": answers.metadata["llm_calls"]})

    with FakeOpenAIServer() as server, dg.instance_for_test() as instance:
        sampler = PipesSampler(
            job_launcher=launcher, artifact_store=LocalArtifactStore(root=str(tmp_path)), base_url=server.base_url
        )
        result = dg.materialize([ecs_answers], instance=instance, resources={"sampler": sampler})
    assert result.success
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("ecs_answers")[0].metadata.items()}
    assert metadata == {"answers": 2, "llm_calls": 2}
    (call,) = aws.run_task_calls
    assert call["cluster"] == "gpu-cluster" and call["launchType"] == "EC2"
    names = {e["name"] for e in call["overrides"]["containerOverrides"][0]["environment"]}
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= names
    assert (tmp_path / "answers" / "ecs.jsonl").read_text().count("\n") == 2
