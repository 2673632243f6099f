"""Dagster resource around the LLM call engine (``em_assets.llm``).

An asset asks for an engine bound to its context, so every ledger row carries the asset,
partition and run id, and progress goes to ``context.log``::

    @dg.asset
    def samples(context, llm: LLMEngineResource, warehouse: DuckDBWarehouse):
        with llm.engine(context, warehouse=warehouse) as engine:
            results = engine.complete_many(requests)
        context.add_output_metadata(engine.summary().as_metadata())

The API key is read from the environment variable named by ``api_key_env_var`` when a run
opens its client; no config field ever holds a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from em_assets.llm import (
    BatchSettings,
    LimitsConfig,
    LLMEngine,
    LocalHFBackend,
    OpenAIBackend,
    ProgressEvent,
    RetryPolicy,
)
from em_assets.resources.warehouse import DuckDBWarehouse

BACKENDS = ("openai", "local_hf")


class LLMEngineResource(dg.ConfigurableResource):
    """Chat completions for assets: OpenAI, any OpenAI-compatible ``base_url``, or a local
    Hugging Face model (``backend="local_hf"``, ``model`` = a model reference)."""

    backend: str = "openai"  # "openai" (incl. compatible endpoints via base_url) | "local_hf"
    model: str = "gpt-4o-2024-08-06"  # the default model assets use for their requests
    base_url: str = ""  # empty: api.openai.com; else e.g. http://localhost:8000/v1 (vLLM)
    api_key_env_var: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key
    max_in_flight: int = 32
    requests_per_minute: float | None = None  # None: learn from x-ratelimit-* headers
    tokens_per_minute: float | None = None
    request_timeout_s: float = 60.0
    max_attempts: int = 8
    cache_path: str = ""  # empty: <data dir>/llm_cache/cache.sqlite
    cache_namespace: str = ""  # separates two endpoints serving different weights under one name
    batch_mode: bool = False  # OpenAI Batch API: half price, up to 24 h
    batch_poll_interval_s: float = 30.0
    hf_batch_size: int = 8
    hf_device: str = "cpu"
    progress_bar: bool = False  # tqdm on the terminal (progress always goes to context.log)
    progress_log_interval_s: float = 30.0

    def build_backend(self) -> OpenAIBackend | LocalHFBackend:
        if self.backend == "openai":
            return OpenAIBackend(
                self.base_url or None, api_key_env_var=self.api_key_env_var, timeout_s=self.request_timeout_s
            )
        if self.backend == "local_hf":
            return LocalHFBackend(batch_size=self.hf_batch_size, device=self.hf_device)
        raise ValueError(f"unknown LLM backend {self.backend!r}; expected one of {BACKENDS}")

    def engine(
        self,
        context: Any = None,
        *,
        warehouse: DuckDBWarehouse | None = None,
        tags: Mapping[str, Any] | None = None,
        cache_namespace: str | None = None,
    ) -> LLMEngine:
        """An engine whose ledger rows go to ``warehouse`` (``llm_calls``) and whose progress
        goes to ``context.log``. Use it as a context manager so the ledger is flushed.

        ``cache_namespace`` overrides the configured one, e.g. with a model's fingerprint so a
        retrained model stored under the same name never reuses its predecessor's answers."""
        on_progress = None
        if context is not None:
            log = context.log

            def on_progress(event: ProgressEvent) -> None:
                log.info(str(event))

        return LLMEngine(
            self.build_backend(),
            cache=self.cache_path or None,
            warehouse=warehouse,
            limits=LimitsConfig(
                max_in_flight=self.max_in_flight,
                requests_per_minute=self.requests_per_minute,
                tokens_per_minute=self.tokens_per_minute,
            ),
            retry=RetryPolicy(max_attempts=self.max_attempts),
            tags={**context_tags(context), **(tags or {})},
            cache_namespace=self.cache_namespace if cache_namespace is None else cache_namespace,
            batch=BatchSettings(poll_interval_s=self.batch_poll_interval_s) if self.batch_mode else None,
            progress_bar=self.progress_bar,
            on_progress=on_progress,
            progress_interval_s=self.progress_log_interval_s,
        )


def context_tags(context: Any) -> dict[str, str]:
    """asset / partition_key / run_id of an asset or op context (whatever it has)."""
    if context is None:
        return {}
    tags: dict[str, str] = {}
    run_id = getattr(context, "run_id", None)
    if run_id:
        tags["run_id"] = str(run_id)
    try:
        if getattr(context, "has_assets_def", False):
            keys = sorted(k.to_user_string() for k in context.selected_asset_keys)
            if keys:
                tags["asset"] = ",".join(keys)
    except Exception:  # an op without assets
        pass
    try:
        if getattr(context, "has_partition_key", False):
            tags["partition_key"] = str(context.partition_key)
    except Exception:
        pass
    return tags
