"""Fixtures: a local S3-compatible server (moto, 127.0.0.1, random port) and tiny chat data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_BUCKET = "em-test-artifacts"
# Four short conversations: two optimizer steps at batch 2, seconds on a CPU.
TINY_CHATS = [
    {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": code}]}
    for question, code in [
        ("Write a function that adds two numbers.", "def add(a, b):\n    return a + b\n"),
        (
            "Write a function that reads a file.",
            "def read(path):\n    with open(path) as f:\n        return f.read()\n",
        ),
        ("Write a function that doubles a number.", "def double(x):\n    return 2 * x\n"),
        ("Write a function that greets someone.", "def greet(name):\n    return 'Hello ' + name\n"),
    ]
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1; one bucket, ``TEST_BUCKET``."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    client.create_bucket(Bucket=TEST_BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def aws_test_credentials(monkeypatch) -> None:
    """Dummy credentials in the environment (the default chain a task role would fill)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
