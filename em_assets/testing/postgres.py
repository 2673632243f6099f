"""A throwaway local Postgres for tests and benchmarks (Debian's ``postgresql`` package).

``LocalPostgres.start()`` runs ``initdb`` and ``pg_ctl`` in a temp folder on a free port, with
password (scram) authentication; as root it runs them as the ``postgres`` user, since Postgres
refuses to run as root. ``stop()`` removes everything.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

USER = "em"


class PostgresMissing(RuntimeError):
    """Postgres's server binaries (initdb, pg_ctl) are not installed."""


def server_bindir() -> Path | None:
    """The folder of initdb / pg_ctl (Debian: /usr/lib/postgresql/<version>/bin), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPostgres:
    password: str
    port: int = 0
    bindir: Path = field(default_factory=Path)
    root: Path = field(default_factory=Path)
    run_as: str | None = None

    def url(self, database: str, *, with_password: bool = False) -> str:
        secret = f":{self.password}" if with_password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def _as(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else argv

    def start(self) -> LocalPostgres:
        bindir = server_bindir()
        if bindir is None:
            raise PostgresMissing("Postgres not found (apt-get install postgresql; scripts/install.sh does it as root)")
        self.bindir, self.port = bindir, _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="em-pg-"))
        (self.root / "pw").write_text(self.password)
        if os.geteuid() == 0:
            self.run_as = "postgres"
            owner = pwd.getpwnam(self.run_as)  # KeyError: no such user (the Debian package creates it)
            for path in (self.root, self.root / "pw"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        data = self.root / "data"
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256"]
        initdb += [f"--pwfile={self.root / 'pw'}", "-E", "UTF8", "--no-sync"]
        subprocess.run(self._as(initdb), check=True, capture_output=True)
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        start = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w", "start"]
        subprocess.run(self._as(start), check=True, capture_output=True)
        return self

    def create_database(self, name: str) -> None:
        subprocess.run(
            [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name],
            check=True,
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
        )

    def stop(self) -> None:
        stop = [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"]
        subprocess.run(self._as(stop), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
