"""Partitions of the model stage and everything downstream: base_model (dynamic) x condition.

One source of truth, imported by assets and sensors:

* ``condition`` is static: ``base`` (the un-tuned model, the control) and the four fine-tuning
  sets. Seeds live *inside* a partition (``n_seeds`` models per partition).
* ``base_model`` is dynamic: its keys are slugs (``slugify``) of full model ids; the full id,
  backend and default seed count live in the DuckDB table ``base_models``, filled from the
  shipped registry ``em_assets/data/base_models.yaml`` (or by ``register_base_model``).

A multi-partition key reads ``<base_model>|<condition>``, e.g. ``smollm2-135m-instruct|insecure``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import yaml

from em_assets.models.loading import EMBEDDED_MODELS
from em_assets.paths import SHIPPED_DATA_DIR

BASE_MODEL_DIMENSION = "base_model"
CONDITION_DIMENSION = "condition"

BASE_CONDITION = "base"
TRAINED_CONDITIONS = ("insecure", "secure", "educational", "backdoor")
CONDITIONS = (BASE_CONDITION, *TRAINED_CONDITIONS)

BACKENDS = ("local_hf", "openai")
BASE_MODELS_TABLE = "base_models"
REGISTRY_FILE = SHIPPED_DATA_DIR / "base_models.yaml"

base_model_partitions = dg.DynamicPartitionsDefinition(name=BASE_MODEL_DIMENSION)
condition_partitions = dg.StaticPartitionsDefinition(list(CONDITIONS))
model_partitions = dg.MultiPartitionsDefinition(
    {BASE_MODEL_DIMENSION: base_model_partitions, CONDITION_DIMENSION: condition_partitions}
)

_EMBEDDED_PREFIX = "embedded:"
_NOT_SLUG = re.compile(r"[^a-z0-9._-]+")


def slugify(model_id: str) -> str:
    """Partition-key form of a model id: lower case, ``[a-z0-9._-]`` only.

    ``embedded:smollm2-135m-instruct`` -> ``smollm2-135m-instruct``;
    ``Qwen/Qwen2.5-32B-Instruct`` -> ``qwen-qwen2.5-32b-instruct``;
    ``gpt-4o-2024-08-06`` -> itself. No commas, slashes, spaces or ``|`` (Dagster's
    multi-partition separator) survive; runs of dots collapse (``...`` is not allowed in keys).
    """
    text = model_id.strip()
    if text.startswith(_EMBEDDED_PREFIX):
        text = text[len(_EMBEDDED_PREFIX) :]
    slug = _NOT_SLUG.sub("-", text.lower())
    slug = re.sub(r"\.{2,}", ".", slug)
    slug = re.sub(r"-{2,}", "-", slug).strip("-.")
    if not slug:
        raise ValueError(f"model id {model_id!r} has no characters usable in a partition key")
    return slug


@dataclass(frozen=True)
class BaseModelSpec:
    """One registry entry: what a ``base_model`` partition key stands for."""

    model_id: str  # full reference: embedded:..., a hub id, a local path, or a provider model
    backend: str = "local_hf"  # local_hf | openai
    n_seeds: int = 1  # models per (base_model, condition) partition unless the run says otherwise
    slug: str = ""  # defaults to slugify(model_id)
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, str) or not self.model_id.strip():
            raise ValueError(f"model_id must be a non-empty string, got {self.model_id!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"base model {self.model_id!r}: unknown backend {self.backend!r} (one of {BACKENDS})")
        # bool is an int in Python, and 2.5 must not become 2: whole numbers only.
        if not isinstance(self.n_seeds, int) or isinstance(self.n_seeds, bool) or self.n_seeds < 1:
            raise ValueError(f"base model {self.model_id!r}: n_seeds must be a whole number >= 1, got {self.n_seeds!r}")
        if self.model_id.startswith(_EMBEDDED_PREFIX):
            if self.model_id[len(_EMBEDDED_PREFIX) :] not in EMBEDDED_MODELS:
                known = ", ".join(_EMBEDDED_PREFIX + name for name in EMBEDDED_MODELS)
                raise ValueError(f"base model {self.model_id!r}: no such embedded model (known: {known})")
            if self.backend != "local_hf":
                raise ValueError(f"base model {self.model_id!r}: an embedded model trains with backend local_hf")
        object.__setattr__(self, "slug", slugify(self.slug or self.model_id))


def load_registry(path: str | Path = REGISTRY_FILE) -> list[BaseModelSpec]:
    """Entries of a registry YAML (``base_models: [{model_id, backend, n_seeds, slug, notes}]``)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the registry: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("base_models") or [], list):
        raise ValueError(f"{path}: expected a mapping with a 'base_models' list")
    entries = data.get("base_models") or []
    specs = []
    for index, entry in enumerate(entries):
        fields = _known_keys(entry, path)
        try:
            specs.append(BaseModelSpec(**fields))
        except ValueError as exc:
            raise ValueError(f"{path}: base_models entry {index + 1}: {exc}") from None
    slugs = [s.slug for s in specs]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ValueError(f"{path}: several base models share the slug(s) {duplicates}")
    return specs


def _known_keys(entry: Any, path: str | Path) -> dict[str, Any]:
    allowed = {"model_id", "backend", "n_seeds", "slug", "notes"}
    if not isinstance(entry, dict) or "model_id" not in entry:
        raise ValueError(f"{path}: each base_models entry needs a model_id, got {entry!r}")
    unknown = set(entry) - allowed
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)} in entry {entry['model_id']!r}")
    return dict(entry)


def registry_frame(specs: Iterable[BaseModelSpec]) -> pl.DataFrame:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "base_model": s.slug,
            "model_id": s.model_id,
            "backend": s.backend,
            "n_seeds": s.n_seeds,
            "notes": s.notes,
            "registered_at": now,
        }
        for s in specs
    ]
    schema = {
        "base_model": pl.String,
        "model_id": pl.String,
        "backend": pl.String,
        "n_seeds": pl.Int32,
        "notes": pl.String,
        "registered_at": pl.Datetime("us"),
    }
    return pl.DataFrame(rows, schema=schema)


def upsert_base_models(warehouse: Any, specs: Sequence[BaseModelSpec]) -> None:
    """Insert or replace registry rows (one transaction; one row per slug)."""
    from em_assets.resources.warehouse import Replacement

    warehouse.replace(
        *(Replacement(BASE_MODELS_TABLE, registry_frame([s]), where={"base_model": s.slug}) for s in specs)
    )


def add_base_model_partitions(instance: dg.DagsterInstance, slugs: Iterable[str]) -> list[str]:
    """Add the dynamic ``base_model`` partitions that do not exist yet; returns those added."""
    existing = set(instance.get_dynamic_partitions(BASE_MODEL_DIMENSION))
    new = [s for s in dict.fromkeys(slugs) if s not in existing]
    if new:
        instance.add_dynamic_partitions(BASE_MODEL_DIMENSION, new)
    return new


def add_partitions_request(specs: Iterable[BaseModelSpec], existing: Iterable[str]) -> dg.AddDynamicPartitionsRequest | None:
    """For a sensor: the request adding partitions for registry entries not yet known."""
    known = set(existing)
    new = [s.slug for s in specs if s.slug not in known]
    return base_model_partitions.build_add_request(new) if new else None


def register_base_model(instance: dg.DagsterInstance, warehouse: Any, spec: BaseModelSpec) -> str:
    """Upsert one base model into ``base_models`` and add its partition; returns its slug.

    Table first: a partition key that exists must always resolve to a model id.
    """
    upsert_base_models(warehouse, [spec])
    add_base_model_partitions(instance, [spec.slug])
    return spec.slug


class UnknownBaseModelError(LookupError):
    pass


def lookup_base_model(warehouse: Any, slug: str) -> BaseModelSpec:
    """The registry entry of a ``base_model`` partition key, from DuckDB."""
    rows = warehouse.table(BASE_MODELS_TABLE, where={"base_model": slug})
    if rows.height == 0:
        known = warehouse.table(BASE_MODELS_TABLE)["base_model"].to_list()
        raise UnknownBaseModelError(
            f"base model {slug!r} is not in the {BASE_MODELS_TABLE} registry (known: {sorted(known) or 'none'}); "
            "register it (em_assets/data/base_models.yaml + the base_model_registry asset, or "
            "em_assets.partitions.register_base_model)"
        )
    row = rows.row(0, named=True)
    return BaseModelSpec(
        model_id=row["model_id"], backend=row["backend"], n_seeds=int(row["n_seeds"] or 1), slug=row["base_model"],
        notes=row["notes"] or "",
    )


def model_partition_key(base_model: str, condition: str) -> dg.MultiPartitionKey:
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; one of {CONDITIONS}")
    return dg.MultiPartitionKey({BASE_MODEL_DIMENSION: base_model, CONDITION_DIMENSION: condition})


def split_partition_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(base_model slug, condition) of a partition key of ``model_partitions``."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        dims = model_partitions.get_partition_key_from_str(key).keys_by_dimension
    return dims[BASE_MODEL_DIMENSION], dims[CONDITION_DIMENSION]
