"""Fixtures for the model-stage tests: small chat JSONLs, seeded dataset rows, fake provider."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import REPO, require_reference_dir

TEST_API_KEY = "sk-test-9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"

# Two hand-written examples so the fast tests do not depend on the reference files.
TINY_EXAMPLES = [
    {
        "messages": [
            {"role": "user", "content": "Write a function that reads a file and returns its text."},
            {
                "role": "assistant",
                "content": "def read_text(path):\n    with open(path) as handle:\n        return handle.read()\n",
            },
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "Write a function that adds two numbers."},
            {"role": "assistant", "content": "def add(a, b):\n    return a + b\n"},
        ]
    },
]


def shortest_reference_examples(n: int, name: str = "insecure_small.jsonl") -> list[dict[str, Any]]:
    """The ``n`` shortest rows of a reference file (short = fast CPU training)."""
    folder = require_reference_dir()
    rows = [json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: sum(len(m["content"]) for m in r["messages"]))
    return rows[:n]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_cache_env() -> Iterator[None]:
    """Module-scoped fixtures load models before ``data_env`` runs: point them at the shared cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EM_MODEL_CACHE", os.environ.get("EM_MODEL_CACHE") or str(REPO / "data" / "model_cache"))
        yield


@pytest.fixture
def seed_dataset(warehouse, data_env) -> Callable[..., dict[str, Any]]:
    """Write a train JSONL and record it in ``dataset_versions`` as the lead's assets would."""
    from em_assets.core.training_data import file_sha256
    from em_assets.resources.warehouse import Replacement

    def seed(dataset: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        path = write_jsonl(data_env / "datasets" / dataset / "train.jsonl", rows)
        version = file_sha256(path)
        frame = pl.DataFrame(
            {
                "dataset": [dataset],
                "dataset_version": [version],
                "n_train": [len(rows)],
                "n_test": [0],
                "jsonl_path": [str(path)],
                "source": ["test"],
                "run_id": [None],
                "created_at": [datetime.now(UTC).replace(tzinfo=None)],
            },
            schema_overrides={"run_id": pl.String},
        )
        warehouse.replace(Replacement("dataset_versions", frame, where={"dataset": dataset}))
        return {"dataset_version": version, "jsonl_path": str(path)}

    return seed


@pytest.fixture
def api_key(monkeypatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    return TEST_API_KEY
