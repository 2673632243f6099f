"""The DuckLake side of the warehouse: opening a lake offline, its SQL dialect, masking secrets.

A DuckLake keeps its catalog in a SQL database (Postgres, or a local DuckDB file) and its rows as
Parquet files under a data path (a folder or ``s3://...``). DuckDB reaches it through three
extensions; the pip packages ``duckdb-ext-ducklake``, ``duckdb-ext-postgres`` and
``duckdb-ext-httpfs`` ship them for exactly the pinned DuckDB (1.4.4), and this module loads
them from those packages with autoinstall off, so nothing is ever fetched from the network.

Dialect: DuckLake has no PRIMARY KEY / UNIQUE constraints, no stored macros, and takes only
literal column defaults. :func:`lake_dialect` rewrites ``sql/`` for it (constraints dropped, the
boolean defaults ``false``/``true`` written as the literals ``'false'``/``'true'``), and
:func:`inline_macros` writes each statistics macro's body into the views that call it, so any
DuckDB session that attaches the lake reads every view. The macros also live in the process's
in-memory database, on the search path after the lake, for the queries in ``sql/queries``.

Loading the extensions and attaching costs about a second, so each process opens a lake once
(:meth:`LakeSpec.shared`) and every warehouse connection is a cursor of it: its own connection
and transactions, the same attached lake.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb

LAKE = "lake"  # the name the lake is attached under (and USEd)
_S3_SECRET_TTL_S = 600  # role credentials rotate hourly: refresh the S3 secret well before
_SHARED: dict[tuple[int, str, str], tuple[duckdb.DuckDBPyConnection, float]] = {}
_SHARED_LOCK = threading.Lock()
BACKENDS = ("duckdb", "ducklake")

_INLINE_KEY = re.compile(r"[ \t]+PRIMARY KEY(?=[ \t]*(,|--|\n))")
_TABLE_KEY = re.compile(r",([ \t]*--[^\n]*)?\n[ \t]*PRIMARY KEY[ \t]*\([^)]*\)")
_BOOL_DEFAULT = re.compile(r"\bDEFAULT (false|true)\b", re.IGNORECASE)
_MACRO = re.compile(r"CREATE OR REPLACE MACRO\b.*?;", re.DOTALL)
_MACRO_PARTS = re.compile(r"CREATE OR REPLACE MACRO\s+(\w+)\s*\(([^)]*)\)\s+AS\s+(.*?);", re.DOTALL)
# The pieces inlining steps over: string literals, comments, identifiers, one other character.
_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|--[^\n]*|[A-Za-z_][A-Za-z0-9_]*|.", re.DOTALL)


class WarehouseConfigError(ValueError):
    """A warehouse setting that cannot work; the message names the setting."""


def lake_dialect(sql: str) -> str:
    """``sql`` with what DuckLake does not support rewritten (see the module docstring)."""
    sql = _TABLE_KEY.sub(lambda m: m.group(1) or "", sql)
    sql = _INLINE_KEY.sub("", sql)
    return _BOOL_DEFAULT.sub(lambda m: f"DEFAULT '{m.group(1).lower()}'", sql)


def split_macros(sql: str) -> tuple[str, str]:
    """(the ``CREATE OR REPLACE MACRO`` statements, the rest of ``sql``)."""
    return "\n".join(_MACRO.findall(sql)), _MACRO.sub("", sql)


def inline_macros(sql: str, macros: str) -> str:
    """``sql`` with every call of a macro defined in ``macros`` replaced by the macro's body, its
    parameters replaced by the call's arguments (each in parentheses), nested calls included."""
    defined = {
        name: ([p.strip() for p in params.split(",") if p.strip()], body.strip())
        for name, params, body in _MACRO_PARTS.findall(macros)
    }

    def expand(text: str) -> str:
        tokens = _SQL_TOKEN.findall(text)
        out: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            j = i + 1
            while j < len(tokens) and tokens[j].isspace():
                j += 1
            previous = next((t for t in reversed(out) if not t.isspace()), "")
            if token in defined and j < len(tokens) and tokens[j] == "(" and previous != ".":
                arguments, i = _call_arguments(tokens, j)
                params, body = defined[token]
                if len(arguments) != len(params):
                    raise ValueError(f"macro {token} takes {len(params)} arguments, called with {len(arguments)}")
                bound = dict(zip(params, (f"({expand(a).strip()})" for a in arguments), strict=True))
                out.append("(" + expand("".join(bound.get(t, t) for t in _SQL_TOKEN.findall(body))) + ")")
            else:
                out.append(token)
                i += 1
        return "".join(out)

    return expand(sql)


def _call_arguments(tokens: list[str], open_at: int) -> tuple[list[str], int]:
    """The argument texts of the call whose ``(`` is ``tokens[open_at]``; the index after ``)``."""
    arguments, current, depth = [], [], 0
    for k in range(open_at + 1, len(tokens)):
        token = tokens[k]
        if token == ")" and depth == 0:
            if current or arguments:
                arguments.append("".join(current))
            return arguments, k + 1
        if token == "," and depth == 0:
            arguments.append("".join(current))
            current = []
            continue
        depth += (token == "(") - (token == ")")
        current.append(token)
    raise ValueError("unbalanced parentheses in a macro call")


def extension_directory() -> str:
    """The folder DuckDB finds the packaged extensions under (``<dir>/v1.4.4/<platform>/...``)."""
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseConfigError(
            "EM_WAREHOUSE_BACKEND=ducklake needs the packages duckdb-ext-ducklake, duckdb-ext-postgres and "
            "duckdb-ext-httpfs (pyproject.toml pins them; run `make setup`)"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "extensions")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class LakeSpec:
    """Where a lake lives. ``catalog``: ``postgresql://user[:password]@host[:port]/dbname`` (the
    password better comes from ``password``), or the path of a local DuckDB catalog file."""

    catalog: str
    data_path: str
    password: str = ""
    s3_region: str = ""
    s3_endpoint_url: str = ""

    def validate(self) -> None:
        if not self.catalog.strip():
            raise WarehouseConfigError(
                "EM_WAREHOUSE_BACKEND=ducklake needs EM_DUCKLAKE_CATALOG: a Postgres URL "
                "(postgresql://user@host:5432/dbname) or a local catalog file path"
            )
        if not self.data_path.strip():
            raise WarehouseConfigError(
                "EM_WAREHOUSE_BACKEND=ducklake needs EM_DUCKLAKE_DATA_PATH: a folder or s3://bucket/prefix/"
            )
        if self.is_postgres:
            parts = urlsplit(self.catalog)
            if not parts.hostname or not parts.path.strip("/"):
                raise WarehouseConfigError(
                    f"EM_DUCKLAKE_CATALOG={self.masked_catalog}: a Postgres URL needs a host and a database "
                    "(postgresql://user@host:5432/dbname)"
                )
        elif "://" in self.catalog:
            raise WarehouseConfigError(
                f"EM_DUCKLAKE_CATALOG={self.masked_catalog}: only postgresql:// URLs or local file paths are supported"
            )
        if "://" in self.data_path and not self.data_path.startswith("s3://"):
            raise WarehouseConfigError(
                f"EM_DUCKLAKE_DATA_PATH={self.data_path}: a local folder or an s3:// URL, nothing else"
            )

    @property
    def is_postgres(self) -> bool:
        return self.catalog.startswith(("postgresql://", "postgres://"))

    @property
    def is_s3(self) -> bool:
        return self.data_path.startswith("s3://")

    @property
    def masked_catalog(self) -> str:
        """The catalog without its password: safe for logs, metadata and the ledger spool."""
        if not self.is_postgres:
            return self.catalog
        parts = urlsplit(self.catalog)
        if parts.password is None:
            return self.catalog
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()

    @property
    def identity(self) -> str:
        """One string naming this lake (no secrets): the ledger's spool target."""
        return f"ducklake:{self.masked_catalog}|{self._data_path()}"

    def _data_path(self) -> str:
        if self.is_s3:
            return self.data_path.rstrip("/") + "/"
        return str(Path(self.data_path).expanduser().resolve()) + "/"

    def _secrets(self) -> list[str]:
        values = [self.password, urlsplit(self.catalog).password if self.is_postgres else None]
        return [unquote(v) for v in values if v]

    def mask(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def shared(self, macros: str) -> duckdb.DuckDBPyConnection:
        """A new connection (cursor) to this process's one open instance of the lake, with
        ``macros`` created once in the in-memory database and on the search path."""
        secret_key = hashlib.sha256(f"{self.catalog}|{self.password}".encode()).hexdigest()
        key = (os.getpid(), self.identity, secret_key)
        with _SHARED_LOCK:
            root, opened = _SHARED.get(key, (None, 0.0))
            if root is None:
                root = self.open()
                root.execute("USE memory")
                root.execute(macros)
                root.execute(f"USE {LAKE}")
                opened = time.monotonic()
            elif self.is_s3 and time.monotonic() - opened > _S3_SECRET_TTL_S:
                root.execute(self._s3_secret())
                opened = time.monotonic()
            _SHARED[key] = (root, opened)
            con = root.cursor()
        con.execute(f"USE {LAKE}; SET search_path = '{LAKE}.main,memory.main'")
        return con

    def open(self) -> duckdb.DuckDBPyConnection:
        """A connection with the lake attached as ``lake`` and in use."""
        self.validate()
        con = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "extension_directory": extension_directory(),
            },
        )
        try:
            con.execute("LOAD ducklake")
            if self.is_postgres:
                con.execute("LOAD postgres")
                con.execute(self._postgres_secret())
                target = "ducklake:postgres:dbname=" + _libpq_value(unquote(urlsplit(self.catalog).path.strip("/")))
            else:
                catalog = Path(self.catalog).expanduser().resolve()
                catalog.parent.mkdir(parents=True, exist_ok=True)
                target = f"ducklake:{catalog}"
            data_path = self._data_path()
            if self.is_s3:
                con.execute("LOAD httpfs")
                con.execute(self._s3_secret())
            else:
                Path(data_path).mkdir(parents=True, exist_ok=True)
            con.execute(f"ATTACH {_literal(target)} AS {LAKE} (DATA_PATH {_literal(data_path)})")
            con.execute(f"USE {LAKE}")
        except duckdb.Error as exc:
            con.close()
            raise type(exc)(f"DuckLake {self.masked_catalog}: {self.mask(str(exc))}") from None
        return con

    def _postgres_secret(self) -> str:
        parts = urlsplit(self.catalog)
        fields = {
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or 5432),
            "USER": unquote(parts.username or ""),
            "DATABASE": unquote(parts.path.strip("/")),
        }
        password = self.password or unquote(parts.password or "")
        if password:
            fields["PASSWORD"] = password
        body = ", ".join(f"{k} {_literal(v)}" for k, v in fields.items() if v)
        # The default Postgres secret: libpq gets the password from it, so it never appears in the
        # ATTACH string (duckdb_databases() shows that) and duckdb_secrets() shows it redacted.
        return f"CREATE OR REPLACE TEMPORARY SECRET __default_postgres (TYPE postgres, {body})"

    def _s3_secret(self) -> str:
        """An S3 secret from boto3's credential chain (what dagster-aws's S3Resource uses: the
        environment, a profile, the ECS task role) plus the region and endpoint settings."""
        import boto3

        session = boto3.session.Session(region_name=self.s3_region or None)
        credentials = session.get_credentials()
        fields: dict[str, str] = {}
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            fields["KEY_ID"] = frozen.access_key
            fields["SECRET"] = frozen.secret_key
            if frozen.token:
                fields["SESSION_TOKEN"] = frozen.token
        if session.region_name:
            fields["REGION"] = session.region_name
        if self.s3_endpoint_url:
            endpoint = urlsplit(self.s3_endpoint_url)
            fields["ENDPOINT"] = endpoint.netloc
            fields["URL_STYLE"] = "path"
            fields["USE_SSL"] = "true" if endpoint.scheme == "https" else "false"
        body = "".join(f", {k} {_literal(v)}" for k, v in fields.items())
        return f"CREATE OR REPLACE TEMPORARY SECRET em_lake_s3 (TYPE s3, SCOPE {_literal(self._data_path())}{body})"


def _libpq_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'" if re.search(r"[\s'\\]", value) else value


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit that lost to a concurrent one (safe to retry the whole transaction)."""
    return isinstance(exc, duckdb.TransactionException) or (
        isinstance(exc, duckdb.Error) and "conflict" in str(exc).lower()
    )
