"""Finding new base models at an OpenAI-compatible ``GET /v1/models`` endpoint.

Only ids matching a configured pattern become base models: an endpoint lists dozens of models
(embeddings, audio, older snapshots) and registering one starts a full fine-tuning chain, so
matching nothing is the default. A pattern is a shell glob (``gpt-4o-*``) or, prefixed with
``re:``, a regular expression searched in the id (``re:^ft:gpt-4o-mini``).

The API key is read from the environment variable *named* in the settings at the moment of the
call; it is never a config value, never stored, and never part of a message (a provider's error
body may echo part of it, so only the HTTP status is reported).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import httpx

from em_assets.registry import BACKENDS, BaseModelSpec

REGEX_PREFIX = "re:"


class ModelDiscoverySettings(dg.ConfigurableResource):
    """Where the new-base-model sensor looks, besides the registry YAML.

    ``url``: an OpenAI-compatible base URL (``http://host:8000/v1``) or its ``/models`` URL;
    empty turns discovery off. ``patterns``: comma-separated globs / ``re:`` regexes, or a JSON
    list (for regexes containing commas).
    """

    registry_path: str = ""  # empty: the shipped em_assets/data/base_models.yaml
    url: str = ""
    patterns: str = ""
    api_key_env_var: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key
    backend: str = "openai"  # how discovered models are fine-tuned (a BaseModelSpec backend)
    n_seeds: int = 1  # models per partition for discovered models
    timeout_s: float = 10.0


@dataclass(frozen=True)
class ModelPattern:
    text: str
    regex: re.Pattern[str] | None  # None: a glob

    def matches(self, model_id: str) -> bool:
        if self.regex is not None:
            return self.regex.search(model_id) is not None
        return fnmatch.fnmatchcase(model_id, self.text)


@dataclass(frozen=True)
class Discovery:
    specs: list[BaseModelSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    listed: int = 0  # ids the endpoint listed


def parse_patterns(text: str) -> tuple[list[ModelPattern], list[str]]:
    """Patterns and a problem per unusable one (a bad regex does not disable the others)."""
    text = text.strip()
    if not text:
        return [], []
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            return [], [f"patterns: not a JSON list ({exc.msg})"]
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            return [], ["patterns: the JSON form must be a list of strings"]
    else:
        raw = text.split(",")
    patterns, problems = [], []
    for item in (p.strip() for p in raw):
        if not item:
            continue
        if item.startswith(REGEX_PREFIX):
            try:
                patterns.append(ModelPattern(item, re.compile(item[len(REGEX_PREFIX) :])))
            except re.error as exc:
                problems.append(f"pattern {item!r}: invalid regular expression ({exc})")
        else:
            patterns.append(ModelPattern(item, None))
    return patterns, problems


def models_url(url: str) -> str:
    """The ``/models`` URL of a base URL (given either form)."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/models") else f"{url}/models"


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment: fit for logs and stored notes."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class DiscoveryError(RuntimeError):
    pass


def fetch_model_ids(url: str, api_key_env_var: str, timeout_s: float = 10.0) -> list[str]:
    """Ids listed by ``GET <url>/models``; the key (if the variable is set) goes in the header."""
    target = models_url(url)
    headers = {"Accept": "application/json"}
    key = os.environ.get(api_key_env_var, "") if api_key_env_var else ""
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.get(target, headers=headers, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        # httpx messages name the URL and the failure, never the request headers.
        raise DiscoveryError(f"{safe_url(target)}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise DiscoveryError(f"{safe_url(target)} answered HTTP {response.status_code}")
    try:
        data = response.json()["data"]
        return [str(item["id"]) for item in data]
    except (ValueError, KeyError, TypeError):
        raise DiscoveryError(f"{safe_url(target)}: not an OpenAI model list") from None


def discover(settings: ModelDiscoverySettings, now: datetime | None = None) -> Discovery:
    """Registry entries for the endpoint's models that match the patterns (nothing when the
    URL or the patterns are unset)."""
    if not settings.url.strip():
        return Discovery()
    patterns, problems = parse_patterns(settings.patterns)
    if not patterns:
        return Discovery(problems=problems or ["discovery URL set but no patterns: nothing is discovered"])
    if settings.backend not in BACKENDS:
        return Discovery(problems=[*problems, f"discovery backend {settings.backend!r} is not one of {BACKENDS}"])
    try:
        ids = fetch_model_ids(settings.url, settings.api_key_env_var, settings.timeout_s)
    except DiscoveryError as exc:
        return Discovery(problems=[*problems, f"model discovery failed: {exc}"])
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    where = safe_url(models_url(settings.url))
    specs: list[BaseModelSpec] = []
    for model_id in dict.fromkeys(ids):
        if not any(p.matches(model_id) for p in patterns):
            continue
        try:
            specs.append(
                BaseModelSpec(
                    model_id=model_id,
                    backend=settings.backend,
                    n_seeds=settings.n_seeds,
                    notes=f"discovered at {where} on {stamp}",
                )
            )
        except ValueError as exc:  # an id with no usable character, n_seeds < 1
            problems.append(f"discovered model {model_id!r}: {exc}")
    return Discovery(specs=specs, problems=problems, listed=len(ids))
