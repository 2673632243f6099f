"""The artifact store round-trips files and folders, on disk and against a local S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster_aws.s3 import S3Resource

from em_assets.resources.artifacts import (
    FOLDER_INDEX_NAME,
    ArtifactStore,
    ArtifactStoreError,
    LocalArtifactStore,
    S3ArtifactStore,
    store_from_spec,
)
from tests.scaleout.conftest import TEST_BUCKET


def adapter_like_folder(root: Path, *, weights: bytes = b"\x00\x01" * 1000) -> Path:
    """Files shaped like a LoRA model-store folder, one of them nested."""
    folder = root / "adapter"
    (folder / "sub").mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(weights)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 32}))
    (folder / "manifest.json").write_text(json.dumps({"base_model_id": "embedded:x", "method": "lora"}))
    (folder / "sub" / "notes.txt").write_text("nested")
    return folder


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != FOLDER_INDEX_NAME
    }


def round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = adapter_like_folder(tmp_path / "src")
    uri = store.put_dir(source, "model_store/smol/insecure/seed0")
    assert store.exists(uri) and store.key_of(uri) == "model_store/smol/insecure/seed0"
    copy = store.get_dir(uri, tmp_path / "out" / "seed0")
    assert files_of(copy) == files_of(source)
    assert files_of(store.local_path("model_store/smol/insecure/seed0")) == files_of(source)

    # A second, smaller upload to the same key replaces the folder: no file of the first survives.
    (source / "sub" / "notes.txt").unlink()
    (source / "adapter_model.safetensors").write_bytes(b"new weights")
    store.put_dir(source, "model_store/smol/insecure/seed0")
    assert files_of(store.get_dir(uri, tmp_path / "out2")) == files_of(source)
    assert files_of(store.local_path(uri)) == files_of(source)

    data = tmp_path / "train.jsonl"
    data.write_text('{"messages": []}\n')
    file_uri = store.put_file(data, "datasets/insecure/abc.jsonl")
    assert store.get_file(file_uri, tmp_path / "back.jsonl").read_text() == data.read_text()
    assert store.local_path("datasets/insecure/abc.jsonl").read_text() == data.read_text()

    assert not store.exists("model_store/nothing/here")
    with pytest.raises(ArtifactStoreError, match="nothing"):
        store.get_dir("model_store/nothing/here", tmp_path / "none")
    with pytest.raises(ArtifactStoreError, match="invalid artifact key"):
        store.uri("../escape")


def test_local_store_round_trip_and_uris_are_plain_paths(tmp_path):
    store = LocalArtifactStore(root=str(tmp_path / "store"))
    round_trip(store, tmp_path)
    assert store.uri("model_store/a/b/seed0") == str(tmp_path / "store" / "model_store" / "a" / "b" / "seed0")
    assert store_from_spec(store.remote_spec()).uri("x") == store.uri("x")


def test_s3_store_round_trip(s3_endpoint, tmp_path):
    s3 = S3Resource(
        endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    store = S3ArtifactStore(s3=s3, bucket=TEST_BUCKET, prefix="runs/a", cache_dir=str(tmp_path / "cache"))
    round_trip(store, tmp_path)
    assert store.uri("model_store/x") == f"s3://{TEST_BUCKET}/runs/a/model_store/x"
    spec = store.remote_spec()
    assert store_from_spec(spec).uri("model_store/x") == store.uri("model_store/x")
    assert spec == {
        "kind": "s3",
        "bucket": TEST_BUCKET,
        "prefix": "runs/a",
        "endpoint_url": s3_endpoint,
        "region_name": "us-east-1",
    }
    # ...and nothing else: credentials never travel in the spec (the other process has its own).


def test_s3_folder_without_index_is_refused(s3_endpoint, tmp_path):
    """A crashed upload (files, no index) is never read as a model."""
    s3 = S3Resource(
        endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    store = S3ArtifactStore(s3=s3, bucket=TEST_BUCKET, prefix="crash", cache_dir=str(tmp_path / "cache"))
    s3.get_client().put_object(Bucket=TEST_BUCKET, Key="crash/model_store/m/seed0/adapter_model.safetensors", Body=b"x")
    with pytest.raises(ArtifactStoreError, match="not a complete folder upload"):
        store.get_dir("model_store/m/seed0", tmp_path / "m")
