"""The LLM call engine (issue #4): one interface for chat completions over OpenAI, any
OpenAI-compatible endpoint and local Hugging Face models; concurrent, rate-limited, retried,
cached on disk, resumable after a crash, Batch API capable, and recorded in a cost ledger.

Typical use from an asset goes through the Dagster resource
(:class:`em_assets.resources.llm_engine.LLMEngineResource`); directly::

    engine = LLMEngine(OpenAIBackend(), warehouse=warehouse, tags={"asset": "samples"})
    results = engine.complete_many(ChatRequest.user("gpt-4o", question, temperature=1).samples(100))
"""

from em_assets.llm.backends.local_hf import LocalHFBackend
from em_assets.llm.backends.openai_api import MissingAPIKeyError, OpenAIBackend, base_url_host, endpoint_family
from em_assets.llm.batch import BatchSettings, BatchWaitTimeout
from em_assets.llm.cache import ResponseCache, default_cache_path
from em_assets.llm.engine import LLMEngine, run_sync
from em_assets.llm.ledger import LEDGER_TABLE, CallSummary, CostLedger, cost_by_asset
from em_assets.llm.prices import ModelPrice, PriceTable
from em_assets.llm.progress import ProgressEvent
from em_assets.llm.rate_limiter import LimitsConfig, RateGate, TokenBucket, parse_ratelimit_headers, parse_retry_after
from em_assets.llm.request import ChatRequest, ChatResult, Completion, TokenLogprob, cache_key
from em_assets.llm.retry import LLMCallsFailed, LLMRequestError, RetryPolicy

__all__ = [
    "LEDGER_TABLE",
    "BatchSettings",
    "BatchWaitTimeout",
    "CallSummary",
    "ChatRequest",
    "ChatResult",
    "Completion",
    "CostLedger",
    "LocalHFBackend",
    "LLMCallsFailed",
    "LLMEngine",
    "LLMRequestError",
    "LimitsConfig",
    "MissingAPIKeyError",
    "ModelPrice",
    "OpenAIBackend",
    "PriceTable",
    "ProgressEvent",
    "RateGate",
    "ResponseCache",
    "RetryPolicy",
    "TokenBucket",
    "TokenLogprob",
    "base_url_host",
    "cache_key",
    "cost_by_asset",
    "default_cache_path",
    "endpoint_family",
    "parse_ratelimit_headers",
    "parse_retry_after",
    "run_sync",
]
