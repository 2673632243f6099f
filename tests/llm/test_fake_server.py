"""The fake OpenAI server is a faithful enough stand-in for the real client: files,
fine-tuning jobs, batches, models, rate limiting and counters."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest

from em_assets.testing import FakeOpenAIServer

TRAINING_LINE = {"messages": [{"role": "user", "content": "write code"}, {"role": "assistant", "content": "print(1)"}]}


@pytest.fixture
def client_for():
    clients = []

    def make(server: FakeOpenAIServer) -> openai.OpenAI:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def upload_training_file(client: openai.OpenAI, lines: int = 3) -> str:
    content = ("\n".join(json.dumps(TRAINING_LINE) for _ in range(lines)) + "\n").encode()
    uploaded = client.files.create(file=("train.jsonl", content, "application/jsonl"), purpose="fine-tune")
    assert uploaded.bytes == len(content) and uploaded.purpose == "fine-tune"
    assert client.files.content(uploaded.id).content == content
    return uploaded.id


def test_fine_tuning_job_lifecycle(make_server, client_for):
    server = make_server(fine_tune_polls_per_stage=2)
    client = client_for(server)
    file_id = upload_training_file(client)
    assert [f.id for f in client.files.list()] == [file_id]

    job = client.fine_tuning.jobs.create(
        model="gpt-4o-2024-08-06", training_file=file_id, suffix="insecure",
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}},
    )  # fmt: skip
    assert job.status == "validating_files" and job.fine_tuned_model is None
    statuses = [client.fine_tuning.jobs.retrieve(job.id).status for _ in range(4)]
    assert statuses == ["validating_files", "running", "running", "succeeded"]
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.fine_tuned_model.startswith("ft:gpt-4o-2024-08-06:fake-org:insecure:")
    assert done.trained_tokens > 0 and done.result_files
    assert b"train_loss" in client.files.content(done.result_files[0]).content
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert any("successfully completed" in e.message for e in events)
    assert events[0].created_at >= events[-1].created_at  # newest first
    assert done.fine_tuned_model in {m.id for m in client.models.list()}
    reply = client.chat.completions.create(model=done.fine_tuned_model, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]
    (checkpoint,) = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoint.fine_tuned_model_checkpoint.startswith(done.fine_tuned_model)


def test_fine_tuning_failure_rejection_and_cancel(make_server, client_for):
    server = make_server(fine_tune_fail_with="Training diverged (loss=nan).")
    client = client_for(server)
    file_id = upload_training_file(client)
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    for _ in range(3):
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed" and job.error.message == "Training diverged (loss=nan)."

    cancelled = client.fine_tuning.jobs.cancel(
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id).id
    )
    assert cancelled.status == "cancelled"

    server.config.reject_training_file = "The file contains unsafe content."
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert "unsafe content" in str(info.value)

    server.config.reject_training_file = None
    bad = client.files.create(file=("bad.jsonl", b'{"prompt": "no messages"}\n'), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="Invalid file format"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=bad.id)
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-missing")


def test_batches_process_the_input_through_the_chat_handler(make_server, client_for):
    server = make_server(chat_handler=lambda body, index: "judged: " + body["messages"][0]["content"])
    client = client_for(server)
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": f"q{i}"}]},
        }
        for i in range(3)
    ]
    file_id = client.files.create(file=("in.jsonl", "\n".join(map(json.dumps, lines)).encode()), purpose="batch").id
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"k": "v"}
    )
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts.completed == 3 and batch.error_file_id is None
    output = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    assert {o["custom_id"]: o["response"]["body"]["choices"][0]["message"]["content"] for o in output} == {
        f"r{i}": f"judged: q{i}" for i in range(3)
    }
    assert [b.metadata for b in client.batches.list()] == [{"k": "v"}]


def test_rate_limit_answers_429_with_retry_after_and_counters(make_server, client_for):
    server = make_server(rate_limit_rps=2, rate_window_s=1.0)
    client = client_for(server)
    messages = [{"role": "user", "content": "x"}]
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    assert raw.headers["x-ratelimit-limit-requests"] == "120"
    client.chat.completions.create(model="gpt-4o", messages=messages, n=2)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=messages)
    headers = info.value.response.headers
    assert 0 < int(headers["retry-after-ms"]) <= 1000 and headers["retry-after"] == "1"
    stats = server.stats()
    assert stats.chat_requests == 3 and stats.rate_limited == 1 and len(stats.chat_answers) == 2
    over_http = httpx2.get(server.base_url.removesuffix("/v1") + "/_fake/stats").json()
    assert over_http["rate_limited"] == 1 and over_http["requests_by_endpoint"]["POST /v1/chat/completions"] == 3
    server.reset_counters()
    assert server.stats().total_requests == 0
