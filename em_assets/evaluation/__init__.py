"""Evaluation stage [base_model x condition]: sampled answers, judge scores, vulnerable-code rate,
likelihood probes; the judge's calibration (per judge version) and the broad probe's positive
control (per base model)."""

import dagster as dg

from em_assets.environment import env_or
from em_assets.evaluation.assets import code_vulnerability_rate, every_answer_judged, judge_scores, sampled_responses
from em_assets.evaluation.positive_control import positive_control
from em_assets.evaluation.probe_assets import judge_calibration, likelihood_probes
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings, ProbeSettings
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.remote_training import RemoteSampler

EVALUATION_ASSETS = [
    sampled_responses,
    judge_scores,
    code_vulnerability_rate,
    likelihood_probes,
    judge_calibration,
    positive_control,
]


def evaluation_resources() -> dict:
    return {
        "evaluation_settings": EvaluationSettings(),
        "judge": JudgeSettings(),
        # Each contrast answer costs the local judge a forward pass per metric: the embedded run calibrates it
        # on 4 answers per kind and question (96 answers); 0 calibrates on all 224 (an API judge).
        "probe_settings": ProbeSettings(calibration_items_per_kind=4),
        # Local models (the embedded default, LoRA adapters, local checkpoints).
        # One batch holds a model's 24 answers: decoding reads every weight once a step, so a wider batch
        # is nearly free on CPU (bench/bench_sampling.py).
        "llm_local": LLMEngineResource(backend="local_hf", model="", hf_batch_size=32),
        # OpenAI or any OpenAI-compatible endpoint (vLLM, Together, ...); key from the env var.
        "llm_api": LLMEngineResource(backend="openai", base_url=env_or("EM_OPENAI_BASE_URL")),
        # Open models sampled outside the step: none locally; the production profile binds a
        # PipesSampler (an ECS task beside vLLM) when EM_ECS_SAMPLE_TASK_DEFINITION is set.
        "remote_sampler": RemoteSampler(),
    }


defs = dg.Definitions(assets=EVALUATION_ASSETS, asset_checks=[every_answer_judged], resources=evaluation_resources())
