"""A DuckLake whose Parquet data lives on S3 (moto's server), the production layout: the S3
secret is built from boto3's credential chain and the S3 settings dagster-aws's S3Resource gets."""

from __future__ import annotations

from datetime import datetime

import boto3
import polars as pl

from em_assets.resources.warehouse import DuckDBWarehouse, Replacement
from tests.conftest import PASSWORD
from tests.scaleout.conftest import TEST_BUCKET, aws_test_credentials, s3_endpoint  # noqa: F401


def test_a_lake_with_its_data_on_s3_writes_parquet_there_and_reads_it_back(
    postgres, lake_db, s3_endpoint, aws_test_credentials
):
    lake = DuckDBWarehouse(
        backend="ducklake",
        ducklake_catalog=postgres.url(lake_db),
        ducklake_catalog_password=PASSWORD,
        ducklake_data_path=f"s3://{TEST_BUCKET}/lake/",
        s3_region="us-east-1",
        s3_endpoint_url=s3_endpoint,
    )
    frame = pl.DataFrame({"provider": ["p"], "content_sha256": ["h"], "file_id": ["f"], "filename": ["x"]})
    frame = frame.with_columns(n_bytes=pl.lit(3, dtype=pl.Int64), created_at=pl.lit(datetime(2026, 1, 1)))
    lake.replace(Replacement("finetune_files", frame, {"provider": "p"}))
    first = lake.snapshot_id()
    bigger = frame.with_columns(n_bytes=pl.lit(5, dtype=pl.Int64))
    lake.replace(Replacement("finetune_files", bigger, {"provider": "p"}))
    assert lake.table("finetune_files")["n_bytes"].to_list() == [5]
    assert lake.query(f"SELECT n_bytes FROM finetune_files AT (VERSION => {first})")["n_bytes"].to_list() == [3]
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=TEST_BUCKET, Prefix="lake/").get("Contents", [])]
    assert any(k.endswith(".parquet") and "finetune_files" in k for k in keys), keys
