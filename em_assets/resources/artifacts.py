"""Where run-time artifacts live: model-store folders, dataset JSONL files, reports.

One small interface, two places:

* ``LocalArtifactStore`` (local profile): a folder on this machine, ``<data dir>`` by default,
  so a key ``model_store/<base>/<condition>/seed0`` is the same folder the local backend
  writes and the artifact's URI is a plain path every existing loader already accepts.
* ``S3ArtifactStore`` (production profile): a bucket and prefix reached through dagster-aws's
  ``S3Resource``; URIs are ``s3://bucket/prefix/key``.

Keys are relative POSIX paths. Every method that reads also accepts a URI of the same store, so
a ``model_ref`` written to the warehouse can be handed back as is.

A folder upload (``put_dir``) must never be readable half-written: the local store copies into
a hidden sibling folder and renames it into place; the S3 store writes an index object
(``.artifact-index.json``, the folder's file list) last, and readers download only what a
complete index lists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from em_assets.core.atomic_files import write_dir_atomically, write_file_atomically
from em_assets.paths import data_dir

FOLDER_INDEX_NAME = ".artifact-index.json"


class ArtifactStoreError(RuntimeError):
    """An artifact that is missing, incomplete, or a key that leaves the store."""


def normalize_key(key: str) -> str:
    """``a/b/c`` from ``a/b/c``, ``/a/b/c/`` or ``a//b/./c``; refuses ``..`` and empty keys."""
    parts = [p for p in PurePosixPath(key.replace("\\", "/")).parts if p not in ("/", ".", "")]
    if not parts or ".." in parts:
        raise ArtifactStoreError(f"invalid artifact key {key!r}")
    return "/".join(parts)


def _files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


class ArtifactStore(dg.ConfigurableResource):
    """The interface: put / get files and folders by key; ``local_path`` for readers that need
    a file on this machine; ``remote_spec`` for a process elsewhere to reopen the store."""

    def key_of(self, key_or_uri: str) -> str:
        raise NotImplementedError

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def exists(self, key_or_uri: str) -> bool:
        raise NotImplementedError

    def put_file(self, path: str | Path, key: str) -> str:
        """Store one file under ``key``; returns its URI."""
        raise NotImplementedError

    def put_dir(self, directory: str | Path, key: str) -> str:
        """Store a folder (all files below it) under ``key``, replacing what was there."""
        raise NotImplementedError

    def get_file(self, key_or_uri: str, destination: str | Path) -> Path:
        raise NotImplementedError

    def get_dir(self, key_or_uri: str, destination: str | Path) -> Path:
        raise NotImplementedError

    def local_path(self, key_or_uri: str) -> Path:
        """A path on this machine holding the artifact (the store's own file, or a cached copy)."""
        raise NotImplementedError

    def remote_spec(self) -> dict[str, Any]:
        """JSON settings from which ``store_from_spec`` rebuilds this store in another process.
        Never holds credentials: the other process has its own (environment, task role)."""
        raise NotImplementedError


class LocalArtifactStore(ArtifactStore):
    """Artifacts in a folder on this machine (``root``; empty = the data dir, ``EM_DATA_DIR``)."""

    root: str = Field(default="", description="folder holding the artifacts; empty = the data dir")

    def root_dir(self) -> Path:
        return Path(self.root).expanduser().resolve() if self.root else data_dir()

    def key_of(self, key_or_uri: str) -> str:
        candidate = Path(key_or_uri)
        if candidate.is_absolute():
            try:
                return normalize_key(candidate.resolve().relative_to(self.root_dir()).as_posix())
            except ValueError:
                raise ArtifactStoreError(f"{key_or_uri} is not inside the artifact store {self.root_dir()}") from None
        return normalize_key(key_or_uri)

    def uri(self, key: str) -> str:
        return str(self.root_dir() / self.key_of(key))

    def exists(self, key_or_uri: str) -> bool:
        return Path(self.uri(key_or_uri)).exists()

    def put_file(self, path: str | Path, key: str) -> str:
        source, target = Path(path).resolve(), Path(self.uri(key))
        if source != target.resolve():
            write_file_atomically(target, lambda tmp: shutil.copyfile(source, tmp))
        return str(target)

    def put_dir(self, directory: str | Path, key: str) -> str:
        source, target = Path(directory).resolve(), Path(self.uri(key))
        if not source.is_dir():
            raise ArtifactStoreError(f"not a folder: {source}")
        if source != target.resolve():
            write_dir_atomically(target, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))
        return str(target)

    def get_file(self, key_or_uri: str, destination: str | Path) -> Path:
        source = self.local_path(key_or_uri)
        if not source.is_file():
            raise ArtifactStoreError(f"{source} is a folder, not a file")
        write_file_atomically(destination, lambda tmp: shutil.copyfile(source, tmp))
        return Path(destination)

    def get_dir(self, key_or_uri: str, destination: str | Path) -> Path:
        source = self.local_path(key_or_uri)
        if not source.is_dir():
            raise ArtifactStoreError(f"{source} is a file, not a folder")
        return write_dir_atomically(Path(destination), lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))

    def local_path(self, key_or_uri: str) -> Path:
        path = Path(self.uri(key_or_uri))
        if not path.exists():
            raise ArtifactStoreError(f"no artifact at {path}")
        return path

    def remote_spec(self) -> dict[str, Any]:
        return {"kind": "local", "root": str(self.root_dir())}


class S3ArtifactStore(ArtifactStore):
    """Artifacts under ``s3://<bucket>/<prefix>/`` through dagster-aws's ``S3Resource``."""

    s3: S3Resource
    bucket: str
    prefix: str = Field(default="em-assets", description="key prefix inside the bucket (may be empty)")
    cache_dir: str = Field(default="", description="local copies for readers; empty = <data dir>/artifact_cache")

    def _object_key(self, key: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def key_of(self, key_or_uri: str) -> str:
        if key_or_uri.startswith("s3://"):
            bucket, _, object_key = key_or_uri[len("s3://") :].partition("/")
            prefix = self.prefix.strip("/")
            if bucket != self.bucket or (prefix and not object_key.startswith(prefix + "/")):
                raise ArtifactStoreError(f"{key_or_uri} is not inside s3://{self.bucket}/{prefix}")
            return normalize_key(object_key[len(prefix) + 1 :] if prefix else object_key)
        return normalize_key(key_or_uri)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(self.key_of(key))}"

    def _client(self) -> Any:
        return self.s3.get_client()

    def _read_index(self, client: Any, key: str) -> dict[str, Any] | None:
        try:
            body = client.get_object(Bucket=self.bucket, Key=self._object_key(f"{key}/{FOLDER_INDEX_NAME}"))["Body"]
        except client.exceptions.NoSuchKey:
            return None
        return json.loads(body.read())

    def _head(self, client: Any, object_key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key_or_uri: str) -> bool:
        key, client = self.key_of(key_or_uri), self._client()
        return self._head(client, self._object_key(key)) is not None or self._read_index(client, key) is not None

    def put_file(self, path: str | Path, key: str) -> str:
        key = self.key_of(key)
        # upload_file switches to multipart for large files (full fine-tuned weights run to GBs).
        self._client().upload_file(str(path), self.bucket, self._object_key(key))
        return self.uri(key)

    def put_dir(self, directory: str | Path, key: str) -> str:
        key, source, client = self.key_of(key), Path(directory), self._client()
        if not source.is_dir():
            raise ArtifactStoreError(f"not a folder: {source}")
        files = {p.relative_to(source).as_posix(): p for p in _files_under(source)}
        index_key = self._object_key(f"{key}/{FOLDER_INDEX_NAME}")
        # Readers trust only a complete index: drop the old one before touching any file.
        client.delete_object(Bucket=self.bucket, Key=index_key)
        for relative, path in files.items():
            client.upload_file(str(path), self.bucket, self._object_key(f"{key}/{relative}"))
        index = {"files": {relative: path.stat().st_size for relative, path in files.items()}}
        client.put_object(Bucket=self.bucket, Key=index_key, Body=json.dumps(index, sort_keys=True).encode())
        self._delete_unlisted(client, key, set(files))
        return self.uri(key)

    def _delete_unlisted(self, client: Any, key: str, keep: set[str]) -> None:
        """Objects a previous, larger upload left under the folder's prefix."""
        folder = self._object_key(key) + "/"
        stale = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
            for item in page.get("Contents", []):
                relative = item["Key"][len(folder) :]
                if relative != FOLDER_INDEX_NAME and relative not in keep:
                    stale.append({"Key": item["Key"]})
        for start in range(0, len(stale), 1000):  # delete_objects takes at most 1000 keys
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": stale[start : start + 1000]})

    def get_file(self, key_or_uri: str, destination: str | Path) -> Path:
        key, target, client = self.key_of(key_or_uri), Path(destination), self._client()
        if self._head(client, self._object_key(key)) is None:
            raise ArtifactStoreError(f"no artifact at {self.uri(key)}")
        return write_file_atomically(
            target, lambda tmp: client.download_file(self.bucket, self._object_key(key), str(tmp))
        )

    def get_dir(self, key_or_uri: str, destination: str | Path) -> Path:
        key, client = self.key_of(key_or_uri), self._client()
        index = self._read_index(client, key)
        if index is None:
            raise ArtifactStoreError(
                f"{self.uri(key)} is not a complete folder upload (no {FOLDER_INDEX_NAME}); "
                "the upload failed or is still running"
            )

        def fill(tmp: Path) -> None:
            for relative in index["files"]:
                target = tmp / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(self.bucket, self._object_key(f"{key}/{relative}"), str(target))
            # Kept beside the files so local_path can tell whether its cached copy is current.
            (tmp / FOLDER_INDEX_NAME).write_text(json.dumps(index, sort_keys=True), encoding="utf-8")

        return write_dir_atomically(Path(destination), fill)

    def local_path(self, key_or_uri: str) -> Path:
        """Folders are cached under ``cache_dir`` and re-downloaded when their index changed;
        single files are downloaded on every call (they are small: JSONL, reports)."""
        key, client = self.key_of(key_or_uri), self._client()
        root = Path(self.cache_dir) if self.cache_dir else data_dir() / "artifact_cache"
        target = root / self.bucket / self._object_key(key)
        index = self._read_index(client, key)
        if index is None:
            return self.get_file(key, target)
        cached = target / FOLDER_INDEX_NAME
        if cached.is_file() and json.loads(cached.read_text(encoding="utf-8")) == index:
            return target
        return self.get_dir(key, target)

    def remote_spec(self) -> dict[str, Any]:
        return {
            "kind": "s3",
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint_url": self.s3.endpoint_url,
            "region_name": self.s3.region_name,
        }


def store_from_spec(spec: dict[str, Any]) -> ArtifactStore:
    """Rebuild a store from ``remote_spec()`` (in a Pipes process). S3 credentials come from
    the process's own environment or role, never from the spec."""
    kind = spec.get("kind")
    if kind == "local":
        return LocalArtifactStore(root=spec["root"])
    if kind == "s3":
        s3 = S3Resource(endpoint_url=spec.get("endpoint_url"), region_name=spec.get("region_name"))
        return S3ArtifactStore(s3=s3, bucket=spec["bucket"], prefix=spec.get("prefix") or "")
    raise ArtifactStoreError(f"unknown artifact store kind {kind!r} (local | s3)")


__all__ = [
    "FOLDER_INDEX_NAME",
    "ArtifactStore",
    "ArtifactStoreError",
    "LocalArtifactStore",
    "S3ArtifactStore",
    "normalize_key",
    "store_from_spec",
]
