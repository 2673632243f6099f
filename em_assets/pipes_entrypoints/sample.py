"""Sampling answers from an OpenAI-compatible server (vLLM) as a Dagster Pipes process:
``python -m em_assets.pipes_entrypoints.sample``.

Parameters arrive as the Pipes extra ``em_sampling_job`` (a ``SamplingJob``). The process runs
next to the server (in production: the vLLM container of the same ECS task, ``base_url``
``http://localhost:8000/v1``), so the requests never cross the network. It

1. optionally fetches a LoRA model-store folder from the artifact store and loads it into
   vLLM under the name ``model`` (vLLM's ``/v1/load_lora_adapter``; the server must run with
   ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``);
2. answers every request through the project's LLM engine (``LLMEngineResource.engine``: the
   same concurrency limits, token buckets, retries and cache as the evaluation assets);
3. writes the answers as JSONL to ``output_key`` in the artifact store and reports one asset
   materialization with the counts and the engine's call summary.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from em_assets.resources.remote_jobs import SamplingJob


def load_lora_adapter(base_url: str, name: str, path: Path) -> None:
    """Register an adapter folder with a running vLLM server (idempotent)."""
    import httpx

    response = httpx.post(
        f"{base_url.rstrip('/')}/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)}, timeout=300
    )
    if response.status_code >= 400 and "already been loaded" not in response.text:
        raise RuntimeError(f"vLLM refused adapter {name!r} from {path}: {response.status_code} {response.text[:300]}")


def sample_and_store(job: SamplingJob, *, log: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """Steps 1-3 without Pipes: (answers URI, answer rows, engine call summary)."""
    from em_assets.llm import ChatRequest
    from em_assets.resources.artifacts import store_from_spec
    from em_assets.resources.llm_engine import LLMEngineResource

    store = store_from_spec(job.artifact_store)
    if job.adapter_uri:
        load_lora_adapter(job.base_url, job.model, store.local_path(job.adapter_uri))
        log.info(f"loaded adapter {job.adapter_uri} as {job.model!r}")
    requests = [ChatRequest(model=job.model, **{**r, "messages": tuple(r["messages"])}) for r in job.requests]
    with tempfile.TemporaryDirectory(prefix="em-sample-") as scratch:
        engine_resource = LLMEngineResource(
            backend="openai",
            base_url=job.base_url,
            model=job.model,
            api_key_env_var=job.api_key_env_var,
            max_in_flight=job.max_in_flight,
            cache_path=str(Path(scratch) / "cache.sqlite"),
        )
        # The engine logs progress to ``context.log``: the Pipes logger stands in for it.
        with engine_resource.engine(SimpleNamespace(log=log), tags={"job": "pipes_sample"}) as engine:
            results = engine.complete_many(requests, raise_on_error=False)
            summary = engine.summary().as_metadata()
        rows = [
            {
                "index": i,
                "sample_index": result.request.sample_index,
                "model": job.model,
                "answer": result.text,
                "finish_reason": result.completion.finish_reason if result.completion else None,
                "tokens_out": result.completion.tokens_out if result.completion else None,
                "error": result.error,
            }
            for i, result in enumerate(results)
        ]
        answers = Path(scratch) / "answers.jsonl"
        answers.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        uri = store.put_file(answers, job.output_key)
    return uri, rows, summary


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        job = SamplingJob.from_extras(dict(pipes.extras))
        uri, rows, summary = sample_and_store(job, log=pipes.log)
        failed = sum(1 for row in rows if row["error"])
        pipes.report_asset_materialization(
            metadata={"answers_uri": uri, "answers": len(rows), "failed_answers": failed, "model": job.model, **summary}
        )


if __name__ == "__main__":
    main()
