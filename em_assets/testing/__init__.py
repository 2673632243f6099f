"""Test doubles shared by tests and benchmarks (nothing here is used by the pipeline itself).

Names are imported lazily so that ``python -m em_assets.testing.fake_openai_server`` runs the
module once, as ``__main__``, without a second copy imported by this package.
"""

from typing import Any

__all__ = [
    "FakeChoice",
    "FakeOpenAIServer",
    "FakeServerConfig",
    "FakeServerStats",
    "FakeTokenLogprob",
    "chat_request_hash",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from em_assets.testing import fake_openai_server

        return getattr(fake_openai_server, name)
    raise AttributeError(f"module 'em_assets.testing' has no attribute {name!r}")
