"""A trained model on disk: the LoRA adapter (or full weights + tokenizer) and ``manifest.json``,
written atomically, and read back in the precision it was trained in.

Reading a store folder onto its base model is ``models.loading``'s job (sampling loads every
model there); this module adds what only training knows: the manifest's precision.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from em_assets.core.atomic_files import write_dir_atomically
from em_assets.models.loading import MANIFEST_NAME, load_store_folder, read_manifest
from em_assets.training_loop.errors import TrainingError
from em_assets.training_loop.precision import resolve_device, training_dtype


def save_trained_model(
    directory: str | Path,
    model: nn.Module,
    tokenizer: Any,
    manifest: dict[str, Any],
) -> Path:
    """Save a LoRA adapter (or full weights + tokenizer) and ``manifest.json`` atomically.

    The manifest must name ``base_model_id`` (how to load the base) and ``method``.
    """
    for required in ("base_model_id", "method"):
        if required not in manifest:
            raise TrainingError(f"manifest needs {required!r}")

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        if manifest["method"] == "full":
            tokenizer.save_pretrained(tmp)
        body = dict(manifest)
        body.setdefault("saved_at", datetime.now(UTC).isoformat())
        body["versions"] = _library_versions()
        (tmp / MANIFEST_NAME).write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")

    return write_dir_atomically(Path(directory), write)


def load_trained_model(
    directory: str | Path, *, device: str = "auto", merge: bool = False, dtype: Any = "training"
) -> tuple[nn.Module, Any]:
    """(model, tokenizer) of a model-store folder, ready for inference (eval mode).

    ``dtype="training"``: the weights in the precision they were trained in (the manifest's);
    without ``merge`` the logits are then bit-identical to the model right after training.
    ``dtype=None``: the checkpoint's own dtype, as ``loading.load`` gives a base model.
    ``merge=True`` folds a LoRA adapter into the base weights (faster generation; logits equal
    up to float rounding).
    """
    target = resolve_device(device)
    if dtype == "training":
        manifest = read_manifest(directory)
        # Manifests record the resolved precision; older ones may say "auto" (resolved here).
        precision = manifest.get("hyperparameters", {}).get("precision", "auto")
        dtype = training_dtype(target, manifest["method"], precision)
    return load_store_folder(directory, dtype=dtype, device=str(target), merge=merge)


def _library_versions() -> dict[str, str]:
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
