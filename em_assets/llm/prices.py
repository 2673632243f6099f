"""Cost estimates from the price table kept as data (``em_assets/data/prices.yaml``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from em_assets.paths import SHIPPED_DATA_DIR

DEFAULT_PRICES_PATH = SHIPPED_DATA_DIR / "prices.yaml"


@dataclass(frozen=True)
class ModelPrice:
    """USD per ``unit_tokens`` (1M) tokens."""

    input: float
    output: float
    cached_input: float | None = None


@dataclass(frozen=True)
class PriceTable:
    models: Mapping[str, ModelPrice]
    fine_tuned: Mapping[str, ModelPrice] = field(default_factory=dict)
    batch_discount: float = 0.5
    unit_tokens: int = 1_000_000
    free_endpoint_families: frozenset[str] = frozenset({"local_hf"})
    as_of: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PriceTable:
        def prices(section: Mapping[str, Any] | None) -> dict[str, ModelPrice]:
            return {
                str(name): ModelPrice(float(p["input"]), float(p["output"]), _optional_float(p.get("cached_input")))
                for name, p in (section or {}).items()
            }

        return cls(
            models=prices(data.get("models")),
            fine_tuned=prices(data.get("fine_tuned")),
            batch_discount=float(data.get("batch_discount", 0.5)),
            unit_tokens=int(data.get("unit_tokens", 1_000_000)),
            free_endpoint_families=frozenset(data.get("free_endpoint_families") or ()),
            as_of=str(data.get("as_of", "")),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        return _load_cached(str(Path(path) if path else DEFAULT_PRICES_PATH))

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of a model name; see the lookup order in prices.yaml."""
        if model.startswith("ft:"):
            base = model.split(":")[1] if model.count(":") >= 1 else ""
            return _longest_prefix(self.fine_tuned, base)
        return _longest_prefix(self.models, model)

    def estimate(
        self,
        model: str,
        tokens_in: int,
        tokens_out: int,
        *,
        endpoint_family: str = "openai",
        batch: bool = False,
        cached_tokens_in: int = 0,
    ) -> float | None:
        """Estimated USD of one call; None when the model has no price."""
        if endpoint_family in self.free_endpoint_families:
            return 0.0
        price = self.lookup(model)
        if price is None:
            return None
        cached = min(max(cached_tokens_in, 0), tokens_in) if price.cached_input is not None else 0
        cost = (
            (tokens_in - cached) * price.input + cached * (price.cached_input or 0.0) + tokens_out * price.output
        ) / self.unit_tokens
        return cost * (self.batch_discount if batch else 1.0)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _longest_prefix(table: Mapping[str, ModelPrice], model: str) -> ModelPrice | None:
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name + "-")]
    return table[max(matches, key=len)] if matches else None


@lru_cache(maxsize=8)
def _load_cached(path: str) -> PriceTable:
    with open(path, encoding="utf-8") as handle:
        return PriceTable.from_mapping(yaml.safe_load(handle) or {})
