"""The jobs the orchestrator hands to a remote Pipes process (``em_assets.pipes_entrypoints``):
what each carries, and the keys of the Pipes extras and messages both sides read. JSON-serializable,
no credentials. Kept here, below both sides, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TRAINING_EXTRAS_KEY = "em_training_job"
ERROR_MESSAGE_KEY = "fine_tune_error"
TRAIN_MODULE = "em_assets.pipes_entrypoints.train"


@dataclass(frozen=True)
class TrainingJob:
    """Everything the remote process needs; JSON-serializable, no credentials."""

    partition: str
    base_model: str
    base_model_id: str
    condition: str
    seed: int
    dataset_version: str
    dataset_uri: str  # key or URI of the training JSONL in the artifact store
    output_key: str  # where the trained folder goes in the artifact store
    artifact_store: dict[str, Any]  # ArtifactStore.remote_spec()
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # LocalHFFineTuner fields

    def to_extras(self) -> dict[str, Any]:
        return {TRAINING_EXTRAS_KEY: asdict(self)}

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> TrainingJob:
        if TRAINING_EXTRAS_KEY not in extras:
            raise ValueError(f"the Pipes extras carry no {TRAINING_EXTRAS_KEY!r}; got keys {sorted(extras)}")
        return cls(**extras[TRAINING_EXTRAS_KEY])


SAMPLING_EXTRAS_KEY = "em_sampling_job"
SAMPLE_MODULE = "em_assets.pipes_entrypoints.sample"


@dataclass(frozen=True)
class SamplingJob:
    base_url: str  # the OpenAI-compatible server, e.g. http://localhost:8000/v1
    model: str  # served model name (the LoRA name when adapter_uri is set)
    requests: list[dict[str, Any]]  # ChatRequest fields without "model"
    output_key: str  # where the answers JSONL goes in the artifact store
    artifact_store: dict[str, Any]  # ArtifactStore.remote_spec()
    adapter_uri: str = ""  # model-store folder to load into the server first
    api_key_env_var: str = "EM_VLLM_API_KEY"  # read in the process; empty variable = no key
    max_in_flight: int = 64

    def to_extras(self) -> dict[str, Any]:
        return {SAMPLING_EXTRAS_KEY: asdict(self)}

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> SamplingJob:
        if SAMPLING_EXTRAS_KEY not in extras:
            raise ValueError(f"the Pipes extras carry no {SAMPLING_EXTRAS_KEY!r}; got keys {sorted(extras)}")
        return cls(**extras[SAMPLING_EXTRAS_KEY])
