"""Fine-tuning backends behind one interface: local transformers + peft, and the OpenAI API."""

from em_assets.resources.finetuning.base import (
    FineTuneError,
    FineTuneRequest,
    FineTuneResult,
    FineTuningBackend,
    JobLedger,
    WarehouseJobLedger,
    load_price_table,
    retry_write,
)
from em_assets.resources.finetuning.local_hf import EMBEDDED_BUDGET, LocalHFFineTuner
from em_assets.resources.finetuning.openai_api import OpenAIFineTuner

__all__ = [
    "EMBEDDED_BUDGET",
    "FineTuneError",
    "FineTuneRequest",
    "FineTuneResult",
    "FineTuningBackend",
    "JobLedger",
    "LocalHFFineTuner",
    "OpenAIFineTuner",
    "WarehouseJobLedger",
    "load_price_table",
    "retry_write",
]
