"""Shared fixtures: temp data dir + DuckDB per test, the paper's reference files, and a real local
Postgres (Debian's package) per session with a fresh DuckLake per test.

The Postgres server (em_assets/testing/postgres.py) runs in a temp folder on a free port with
password authentication, so the tests also cover the password path. Without Postgres the tests
fail in CI (env CI set: .ci/run installs it through scripts/install.sh) and are skipped with a
message elsewhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.testing.postgres import LocalPostgres, PostgresMissing

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path | None:
    """``../shared/em-reference`` beside the checkout (CI lays it there) or EM_REFERENCE_DIR."""
    candidates = [os.environ.get("EM_REFERENCE_DIR"), REPO.parent / "shared" / "em-reference"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "insecure_small.jsonl").is_file():
            return Path(candidate)
    return None


def require_reference_dir() -> Path:
    """The reference folder; a test without it fails in CI (which lays it beside the checkout)
    and is skipped with a message elsewhere."""
    path = reference_dir()
    if path is None:
        message = "paper reference files not found (../shared/em-reference or EM_REFERENCE_DIR)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI lays them beside the checkout, so this is a broken CI setup")
        pytest.skip(message)
    return path


@pytest.fixture
def em_reference() -> Path:
    return require_reference_dir()


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Path:
    """A private data dir and DuckDB file; the shared model cache is kept to avoid reconverting."""
    data = tmp_path / "data"
    monkeypatch.setenv("EM_DATA_DIR", str(data))
    monkeypatch.setenv("EM_DUCKDB_PATH", str(data / "warehouse" / "em.duckdb"))
    monkeypatch.setenv("EM_MODEL_CACHE", os.environ.get("EM_MODEL_CACHE") or str(REPO / "data" / "model_cache"))
    return data


@pytest.fixture
def fake_server() -> Iterator[Callable[..., Any]]:
    """``start(**knobs)`` starts a local OpenAI-compatible server; all are stopped after the test."""
    from em_assets.testing import FakeOpenAIServer

    servers: list[Any] = []

    def start(**knobs: Any) -> Any:
        server = FakeOpenAIServer(**knobs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def warehouse(data_env):
    return DuckDBWarehouse(path=str(data_env / "warehouse" / "em.duckdb"))


PASSWORD = "pg-Secret-4711"  # the tests check it never shows up in errors, rows or metadata


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    try:
        server = LocalPostgres(password=PASSWORD).start()
    except PostgresMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


_counter = iter(range(10**6))


@pytest.fixture
def lake_db(postgres) -> str:
    """A fresh database for one test's DuckLake catalog."""
    name = f"lake_{os.getpid()}_{int(time.time() * 1000) % 10**8}_{next(_counter)}"
    postgres.create_database(name)
    return name


@pytest.fixture
def lake(postgres, lake_db, tmp_path) -> DuckDBWarehouse:
    """A DuckLake on the test's own Postgres database, data in a local folder; the password comes
    from its own setting, as in production."""
    return DuckDBWarehouse(
        backend="ducklake",
        ducklake_catalog=postgres.url(lake_db),
        ducklake_catalog_password=PASSWORD,
        ducklake_data_path=str(tmp_path / "lake_data"),
    )


def _thread_cpu_ticks(native_id: int | None) -> int:
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """A test must not leave threads running that keep working: one left spinning (dagster-aws's
    log-tailing loop, a daemon thread) held the GIL and made every later model test in the
    session ~20x slower. Non-daemon leftovers fail; daemon ones fail if they still burn CPU."""
    import threading
    import time

    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    leaked = [t for t in threading.enumerate() if t not in before]
    for thread in leaked:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    alive = [t for t in leaked if t.is_alive()]
    if not alive:
        return
    start = {t: _thread_cpu_ticks(t.native_id) for t in alive}
    time.sleep(0.5)
    busy = [t for t in alive if _thread_cpu_ticks(t.native_id) - start[t] >= 20]  # >= 0.2 s CPU in 0.5 s
    offenders = [t.name for t in alive if not t.daemon or t in busy]
    assert not offenders, f"threads still running after the test: {offenders}"
