"""The base-model registry: what each ``base_model`` partition key stands for.

The shipped YAML (``em_assets/data/base_models.yaml``: ``base_models: [{model_id, backend,
n_seeds, slug, notes}]``) is parsed here, once, entry by entry: ``read_registry`` keeps the good
entries and names each bad one (a sensor ticking unattended serves the rest); ``load_registry``
refuses the whole file on the first problem (the ``base_model_registry`` asset, run by a person
who just edited the YAML). The DuckDB table ``base_models`` holds every model ever registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import yaml

from em_assets.models.loading import EMBEDDED_MODELS
from em_assets.partitions import BASE_MODEL_DIMENSION
from em_assets.paths import SHIPPED_DATA_DIR

BACKENDS = ("local_hf", "openai")
BASE_MODELS_TABLE = "base_models"
REGISTRY_FILE = SHIPPED_DATA_DIR / "base_models.yaml"
REGISTRY_HISTORY_QUERY = "queries/registry_history.sql"

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


@dataclass(frozen=True)
class RegistryProblem:
    """One entry (or the whole file) that could not be used, and why."""

    where: str  # "entry 3 (model_id 'x')" or the file path
    reason: str
    number: int = 0  # the entry's position from 1; 0 for the whole file

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class RegistryRead:
    specs: list[BaseModelSpec] = field(default_factory=list)
    problems: list[RegistryProblem] = field(default_factory=list)


def read_registry(path: str | Path = REGISTRY_FILE) -> RegistryRead:
    """The usable entries of a registry YAML and a problem for each unusable one."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return RegistryRead(problems=[RegistryProblem(str(path), f"cannot read the registry: {_first_line(exc)}")])
    entries = data.get("base_models") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(entries or [], list):
        return RegistryRead(problems=[RegistryProblem(str(path), "expected a mapping with a `base_models` list")])
    specs: list[BaseModelSpec] = []
    problems: list[RegistryProblem] = []
    first_entry_of_slug: dict[str, int] = {}
    for number, entry in enumerate(entries or [], start=1):
        where = _describe(number, entry)
        try:
            spec = parse_entry(entry)
        except (ValueError, TypeError) as exc:
            problems.append(RegistryProblem(where, _first_line(exc), number))
            continue
        if spec.slug in first_entry_of_slug:
            # The first entry keeps the slug: the later one is the edit that collided.
            reason = f"slug {spec.slug!r} is already used by entry {first_entry_of_slug[spec.slug]}"
            problems.append(RegistryProblem(where, reason, number))
            continue
        first_entry_of_slug[spec.slug] = number
        specs.append(spec)
    return RegistryRead(specs=specs, problems=problems)


def load_registry(path: str | Path = REGISTRY_FILE) -> list[BaseModelSpec]:
    """Every entry of a registry YAML, or a ``ValueError`` naming the file and the first bad entry."""
    read = read_registry(path)
    if read.problems:
        problem = read.problems[0]
        where = f"base_models entry {problem.number}" if problem.number else "the file"
        raise ValueError(f"{path}: {where}: {problem.reason}")
    return read.specs


def parse_entry(entry: Any) -> BaseModelSpec:
    """One registry entry as a ``BaseModelSpec``; ``ValueError``/``TypeError`` naming the fault."""
    if not isinstance(entry, dict):
        raise TypeError(f"an entry must be a mapping, got {type(entry).__name__}")
    allowed = {f.name for f in fields(BaseModelSpec)}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    if "model_id" not in entry:
        raise ValueError("model_id is missing")
    for key in ("backend", "slug", "notes"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise TypeError(f"{key} must be a string, got {entry[key]!r}")
    return BaseModelSpec(**{k: v for k, v in entry.items() if v is not None})


def _describe(number: int, entry: Any) -> str:
    model_id = entry.get("model_id") if isinstance(entry, dict) else None
    return f"entry {number}" + (f" (model_id {model_id!r})" if model_id else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
            "em_assets.registry.register_base_model)"
        )
    row = rows.row(0, named=True)
    return BaseModelSpec(
        model_id=row["model_id"],
        backend=row["backend"],
        n_seeds=int(row["n_seeds"] or 1),
        slug=row["base_model"],
        notes=row["notes"] or "",
    )


def registry_history(warehouse: Any, registry_slugs: Sequence[str] | None) -> pl.DataFrame:
    """Every model ever registered (``base_models`` keeps rows when the YAML drops an entry),
    whether it is in the registry now (``registry_slugs``; None: unknown), and its last
    evaluation run."""
    slugs = None if registry_slugs is None else list(registry_slugs)
    return warehouse.query_file(REGISTRY_HISTORY_QUERY, {"registry_slugs": slugs})
