"""Reading the base-model registry one entry at a time, for unattended operation.

``em_assets.partitions.load_registry`` is strict: one bad entry fails the whole file, which is
right for the ``base_model_registry`` asset (a person just edited the YAML and is watching).
A sensor ticking every few minutes needs the opposite: report the bad entry and keep serving
the good ones. ``read_registry`` first asks ``load_registry`` (so a well-formed file means
exactly what it means to the asset) and only when that fails re-reads the entries one by one,
with the same rules (the fields of ``BaseModelSpec``, a unique slug).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from em_assets.partitions import REGISTRY_FILE, BaseModelSpec, load_registry

REGISTRY_HISTORY_QUERY = "queries/registry_history.sql"


@dataclass(frozen=True)
class RegistryProblem:
    """One entry (or the whole file) that could not be used, and why."""

    where: str  # "entry 3 (model_id 'x')" or the file path
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class RegistryRead:
    specs: list[BaseModelSpec] = field(default_factory=list)
    problems: list[RegistryProblem] = field(default_factory=list)


def read_registry(path: str | Path = REGISTRY_FILE) -> RegistryRead:
    """The usable entries of a registry YAML and a problem for each unusable one."""
    try:
        return RegistryRead(specs=load_registry(path))
    except Exception:  # any failure: find out which entries are to blame
        return _read_entry_by_entry(Path(path))


def _read_entry_by_entry(path: Path) -> RegistryRead:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return RegistryRead(problems=[RegistryProblem(str(path), f"cannot read the registry: {_first_line(exc)}")])
    entries = data.get("base_models") if isinstance(data, dict) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        return RegistryRead(problems=[RegistryProblem(str(path), "`base_models` must be a list of entries")])
    specs: list[BaseModelSpec] = []
    problems: list[RegistryProblem] = []
    first_entry_of_slug: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        where = _describe(number, entry)
        try:
            spec = parse_entry(entry)
        except (ValueError, TypeError) as exc:
            problems.append(RegistryProblem(where, _first_line(exc)))
            continue
        if spec.slug in first_entry_of_slug:
            # The first entry keeps the slug: the later one is the edit that collided.
            problems.append(
                RegistryProblem(where, f"slug {spec.slug!r} is already used by entry {first_entry_of_slug[spec.slug]}")
            )
            continue
        first_entry_of_slug[spec.slug] = number
        specs.append(spec)
    return RegistryRead(specs=specs, problems=problems)


def parse_entry(entry: Any) -> BaseModelSpec:
    """One registry entry as a ``BaseModelSpec``; ``ValueError``/``TypeError`` naming the fault."""
    if not isinstance(entry, dict):
        raise TypeError(f"an entry must be a mapping, got {type(entry).__name__}")
    allowed = {f.name for f in dataclasses.fields(BaseModelSpec)}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    model_id = entry.get("model_id")
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValueError("model_id is missing or not a string")
    for key in ("backend", "slug", "notes"):
        if key in entry and entry[key] is not None and not isinstance(entry[key], str):
            raise TypeError(f"{key} must be a string, got {entry[key]!r}")
    n_seeds = entry.get("n_seeds", 1)
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int):
        raise TypeError(f"n_seeds must be an integer, got {n_seeds!r}")
    cleaned = {k: v for k, v in entry.items() if v is not None}
    return BaseModelSpec(**cleaned)


def _describe(number: int, entry: Any) -> str:
    model_id = entry.get("model_id") if isinstance(entry, dict) else None
    return f"entry {number}" + (f" (model_id {model_id!r})" if model_id else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def registry_history(warehouse: Any, registry_slugs: Sequence[str] | None) -> pl.DataFrame:
    """Every model ever registered (``base_models`` keeps rows when the YAML drops an entry),
    whether it is in the registry now (``registry_slugs``; None: unknown), and its last
    evaluation run."""
    slugs = None if registry_slugs is None else list(registry_slugs)
    return warehouse.query_file(REGISTRY_HISTORY_QUERY, {"registry_slugs": slugs})
