"""Test doubles shared by tests and benchmarks (nothing here is used by the pipeline itself).

The fake OpenAI server lives in :mod:`em_assets.testing.fake_openai`; its main names are
re-exported here.
"""

from em_assets.testing.fake_openai import (
    FakeChoice,
    FakeOpenAIServer,
    FakeServerConfig,
    FakeServerStats,
    FakeTokenLogprob,
    chat_request_hash,
)

__all__ = [
    "FakeChoice",
    "FakeOpenAIServer",
    "FakeServerConfig",
    "FakeServerStats",
    "FakeTokenLogprob",
    "chat_request_hash",
]
