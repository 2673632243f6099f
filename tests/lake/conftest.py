"""A real local Postgres (Debian's package) per test session, and a fresh DuckLake per test.

The server (em_assets/testing/postgres.py) runs in a temp folder on a free port with password
authentication, so the tests also cover the password path. Without Postgres the tests fail in
CI (env CI set: .ci/run installs it through scripts/install.sh) and are skipped with a message
elsewhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from em_assets.resources.warehouse import DuckDBWarehouse
from em_assets.testing.postgres import LocalPostgres, PostgresMissing

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
