"""Shared fixtures: temp data dir + DuckDB per test, and the paper's reference files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path | None:
    """``../shared/em-reference`` beside the checkout (CI lays it there) or EM_REFERENCE_DIR."""
    candidates = [os.environ.get("EM_REFERENCE_DIR"), REPO.parent / "shared" / "em-reference"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "insecure_small.jsonl").is_file():
            return Path(candidate)
    return None


@pytest.fixture
def em_reference() -> Path:
    path = reference_dir()
    if path is None:
        pytest.skip("paper reference files not found (../shared/em-reference or EM_REFERENCE_DIR)")
    return path


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Path:
    """A private data dir and DuckDB file; the shared model cache is kept to avoid reconverting."""
    data = tmp_path / "data"
    monkeypatch.setenv("EM_DATA_DIR", str(data))
    monkeypatch.setenv("EM_DUCKDB_PATH", str(data / "warehouse" / "em.duckdb"))
    monkeypatch.setenv("EM_MODEL_CACHE", os.environ.get("EM_MODEL_CACHE") or str(REPO / "data" / "model_cache"))
    return data


@pytest.fixture
def warehouse(data_env):
    from em_assets.resources.warehouse import DuckDBWarehouse

    return DuckDBWarehouse(path=str(data_env / "warehouse" / "em.duckdb"))
