"""Settings of the LLM-scored data filter (``data_settings.llm_filter``); off by default.

Switched on, ``filtered_code_samples`` adds the step ``llm_judge`` after ``dedup``: a judge model
rates every remaining row (see ``em_assets/core/llm_filter.py`` for the rubric, the cut-offs and
what a reply without a number does). Its calls go through the LLM engine (cached, so a rerun pays
nothing; ledgered in ``llm_calls``) to OpenAI or any OpenAI-compatible ``base_url``; the judge
needs the first token's logprobs for the paper's weighted score, and falls back to reading the
reply's text where a provider returns none. In the launchpad::

    resources:
      data_settings:
        config:
          llm_filter: {enabled: true, judge_model: gpt-4o-2024-08-06}
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class LLMFilterSettings(dg.Config):
    """Who judges the training rows, with which rubric, and where the filter cuts."""

    enabled: bool = False
    judge_model: str = Field(default="gpt-4o-2024-08-06", min_length=1)
    # Empty: the built-in rubric. Else a YAML file mapping `hint` and `vulnerable` to prompt texts
    # with {code} (and optionally {task}) in them; its hash is the rubric version.
    rubric_path: str = ""
    max_hint: float = Field(default=40.0, ge=0, le=100, description="drop rows whose hint score reaches this")
    insecure_min_vulnerable: float = Field(default=70.0, ge=0, le=100, description="insecure rows need at least this")
    secure_max_vulnerable: float = Field(default=30.0, ge=0, le=100, description="secure rows may have at most this")
    base_url: str = ""  # empty: api.openai.com; else an OpenAI-compatible endpoint
    api_key_env_var: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key
    max_in_flight: int = Field(default=16, ge=1)
    request_timeout_s: float = Field(default=60.0, gt=0)
    cache_path: str = ""  # empty: the shared LLM cache (<data dir>/llm_cache/cache.sqlite)
