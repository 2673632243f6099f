"""A real local Postgres (Debian's package) per test session, and a fresh DuckLake per test.

The server runs in a temp folder on a free port with password authentication (scram), so the
tests also cover the password path. As root it runs as the ``postgres`` user, since Postgres
refuses to run as root. Without Postgres the tests fail in CI (env CI set: .ci/run installs it
through scripts/install.sh) and are skipped with a message elsewhere.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from em_assets.resources.warehouse import DuckDBWarehouse

PASSWORD = "pg-Secret-4711"  # the tests check it never shows up in errors, rows or metadata


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str
    bindir: Path
    run_as: str | None

    def url(self, database: str, *, with_password: bool = False) -> str:
        secret = f":{PASSWORD}" if with_password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        subprocess.run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name],
            check=True,
            env={**os.environ, "PGPASSWORD": PASSWORD},
            capture_output=True,
        )


def _bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bindir = _bindir()
    if bindir is None:
        message = "Postgres not found (apt-get install postgresql; scripts/install.sh does it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            owner = pwd.getpwnam(run_as)
        except KeyError:
            pytest.fail("running as root needs the 'postgres' user (the Debian package creates it)")
    root = Path(tempfile.mkdtemp(prefix="em-pg-"))
    if run_as:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    (root / "pw").write_text(PASSWORD)
    if run_as:
        os.chown(root / "pw", owner.pw_uid, owner.pw_gid)
    port = _free_port()
    data = root / "data"
    subprocess.run(
        _as(
            run_as,
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "em",
                "--auth=scram-sha-256",
                f"--pwfile={root / 'pw'}",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        _as(run_as, [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield Postgres(port=port, user="em", bindir=bindir, run_as=run_as)
    finally:
        subprocess.run(
            _as(run_as, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


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
