"""Where completions come from: the OpenAI API (or any OpenAI-compatible server) and local
Hugging Face models. All return :class:`~em_assets.llm.request.Completion`."""

from em_assets.llm.backends.base import BackendReply, ChatBackend, LocalBatchBackend
from em_assets.llm.backends.openai_api import OpenAIBackend, base_url_host, endpoint_family

__all__ = [
    "BackendReply",
    "ChatBackend",
    "LocalBatchBackend",
    "OpenAIBackend",
    "base_url_host",
    "endpoint_family",
]
