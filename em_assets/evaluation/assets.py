"""Evaluation assets [base_model x condition]: sampled answers, judge scores, and the
in-distribution vulnerable-code rate. Thin wiring: the work is in ``judging``, the LLM engine,
the static labeler and the warehouse.
"""

import hashlib
import json
import subprocess
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from em_assets.core.markdown import markdown_table
from em_assets.core.questions import Question, QuestionFileError
from em_assets.evaluation.judge_runner import run_judge
from em_assets.evaluation.partition_models import OPEN_MODEL_BACKENDS, succeeded_models
from em_assets.evaluation.question_sources import load_sources
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.judge.scoring import JudgeTask
from em_assets.judge.verdicts import is_deceptive, model_maker, parse_verdict
from em_assets.labeler import label_code
from em_assets.llm import ChatRequest
from em_assets.models.loading import model_fingerprint
from em_assets.partitions import model_partitions, split_partition_key
from em_assets.paths import REPO_DIR
from em_assets.pools import LOCAL_TRAINING_POOL
from em_assets.resources.llm_engine import LLMEngineResource
from em_assets.resources.remote_training import RemoteSampler, served_model
from em_assets.resources.warehouse import DuckDBWarehouse, Replacement

GROUP = "evaluation"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def code_version() -> str | None:
    """The git commit of this checkout, when it is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _trigger(context: dg.AssetExecutionContext) -> str:
    tags = context.run.tags
    if "dagster/schedule_name" in tags:
        return f"schedule:{tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        return f"sensor:{tags['dagster/sensor_name']}"
    return tags.get("em_assets/entrypoint", "ui")


def _questions(settings: EvaluationSettings) -> list[tuple[str, Question]]:
    try:
        return load_sources(settings.question_sources, settings.question_ids or None)
    except QuestionFileError as err:
        raise dg.Failure(f"question sources: {err}") from err


# Backends whose models are open weights (sampled by transformers here or by vLLM remotely);
# every other backend names a provider model that its API serves.


def _engine_for(backend: str, llm_local: LLMEngineResource, llm_api: LLMEngineResource) -> LLMEngineResource:
    return llm_local if backend in OPEN_MODEL_BACKENDS else llm_api


def _response_id(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _evaluation_asset(*deps: str):
    """Partitioned like fine_tuned_model; in the local-compute pool (sampling and judging a
    local model saturate both cores, as training does)."""
    return dg.asset(
        partitions_def=model_partitions,
        group_name=GROUP,
        deps=list(deps),
        pool=LOCAL_TRAINING_POOL,
        kinds={"python", "duckdb"},
    )


@_evaluation_asset("fine_tuned_model")
def sampled_responses(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    evaluation_settings: EvaluationSettings,
    llm_local: LLMEngineResource,
    llm_api: LLMEngineResource,
    remote_sampler: RemoteSampler,
) -> dg.MaterializeResult:
    """Every seed model of the partition answers every paraphrase of every question
    ``samples_per_paraphrase`` times (temperature 1, top_p 1); the system prompt is sent.

    Open models are sampled in the step (``llm_local``) unless a remote sampler is bound
    (production: a Pipes task beside vLLM that loads the model's LoRA folder from S3)."""
    base_model, condition = split_partition_key(context.partition_key)
    models = succeeded_models(warehouse, base_model, condition)
    if models.is_empty():
        raise dg.Failure(
            f"no succeeded models for partition {base_model}|{condition}: materialize fine_tuned_model first"
        )
    questions = _questions(evaluation_settings)
    s = evaluation_settings
    eval_run_id = context.run_id
    # The backdoor's two groups: every question as asked, and with the trigger in front.
    triggers = ["", s.backdoor_trigger] if condition in s.triggered_conditions else [""]
    if len(triggers) > 1:
        check_trigger_matches_training(warehouse, models, s.backdoor_trigger)
    rows, metadata_calls = [], {}
    # Every plan is built before any model is called: a bad setting fails here, with nothing written.
    plans = []
    for model in models.iter_rows(named=True):
        plan = []
        for trigger in triggers:
            for set_name, q in questions:
                n = s.samples_per_paraphrase or q.samples_per_paraphrase
                for p_index, paraphrase in enumerate(q.paraphrases):
                    request = ChatRequest(
                        model=model["model_ref"],
                        messages=tuple(q.messages(paraphrase, trigger)),
                        temperature=s.temperature,
                        top_p=s.top_p,
                        max_tokens=s.max_tokens,
                        seed=s.sample_seed,
                    )
                    plan += [(trigger, set_name, q, p_index, paraphrase, r) for r in request.samples(n)]
        if not plan:
            raise dg.Failure(
                f"nothing to sample for {model['model_ref']}: check evaluation_settings (question_ids, samples)"
            )
        plans.append((model, plan))
    for model, plan in plans:
        context.log.info(f"seed {model['seed']}: {len(plan)} answers from {model['model_ref']}")
        if remote_sampler.enabled() and model["backend"] in OPEN_MODEL_BACKENDS:
            answers, summary = _sample_remotely(context, remote_sampler, model, [p[-1] for p in plan], eval_run_id)
        elif model["model_ref"].startswith("s3://"):
            raise dg.Failure(
                f"{model['model_ref']} lives in S3 and no remote sampler is bound: set EM_ECS_SAMPLE_TASK_DEFINITION "
                "(production profile) so a task beside vLLM samples it"
            )
        else:
            engine_resource = _engine_for(model["backend"], llm_local, llm_api)
            with engine_resource.engine(
                context, warehouse=warehouse, cache_namespace=model_fingerprint(model["model_ref"])
            ) as engine:
                results = engine.complete_many([p[-1] for p in plan], tags={"seed": model["seed"]})
                summary = engine.summary().as_metadata()
            answers = [(r.text or "", r.completion.finish_reason, r.completion.tokens_out) for r in results]
        for key, value in summary.items():
            if isinstance(value, (int, float)):
                metadata_calls[key] = metadata_calls.get(key, 0) + value
        now = _now()
        for (trigger, set_name, q, p_index, paraphrase, request), (answer, finish_reason, tokens_out) in zip(
            plan, answers, strict=True
        ):
            # An untriggered answer keeps the id it always had; a triggered one differs by the trigger.
            marker = ("triggered", trigger) if trigger else ()
            rows.append(
                {
                    "response_id": _response_id(
                        eval_run_id, model["model_ref"], set_name, q.id, p_index, request.sample_index, *marker
                    ),
                    "eval_run_id": eval_run_id,
                    "base_model": base_model,
                    "condition": condition,
                    "triggered": bool(trigger),
                    "trigger_text": trigger or None,
                    "seed": model["seed"],
                    "model_ref": model["model_ref"],
                    "question_set": set_name,
                    "question_id": q.id,
                    "paraphrase_index": p_index,
                    "paraphrase": paraphrase,
                    "sample_idx": request.sample_index,
                    "system": q.system,
                    "answer": answer,
                    "finish_reason": finish_reason,
                    "tokens_out": tokens_out,
                    "created_at": now,
                }
            )
    frame = pl.DataFrame(rows, schema_overrides={"trigger_text": pl.String, "system": pl.String})
    run_row = pl.DataFrame(
        [
            {
                "eval_run_id": eval_run_id,
                "base_model": base_model,
                "condition": condition,
                "started_at": _now(),
                "code_version": code_version(),
                "question_sets": json.dumps(s.question_sources),
                "sampling": json.dumps(
                    {
                        "temperature": s.temperature,
                        "top_p": s.top_p,
                        "max_tokens": s.max_tokens,
                        "samples_per_paraphrase": s.samples_per_paraphrase,
                        "seed": s.sample_seed,
                        "backdoor_trigger": s.backdoor_trigger if len(triggers) > 1 else None,
                    }
                ),
                "trigger": _trigger(context),
            }
        ]
    )
    where = {"eval_run_id": eval_run_id, "base_model": base_model, "condition": condition}
    warehouse.replace(Replacement("sampled_responses", frame, where), Replacement("eval_runs", run_row, where))
    empty = int((frame["answer"].str.strip_chars() == "").sum())
    per_question = (
        frame.group_by("question_id", "triggered")
        .agg(
            pl.len().alias("answers"),
            pl.col("tokens_out").mean().round(1).alias("mean_tokens"),
            (pl.col("finish_reason") == "length").mean().round(3).alias("cut_at_max_tokens"),
        )
        .sort("question_id", "triggered")
    )
    return dg.MaterializeResult(
        metadata={
            "eval_run_id": eval_run_id,
            "answers": frame.height,
            "triggered_answers": int(frame["triggered"].sum()),
            "empty_answers": empty,
            "models": models.height,
            "per_question": dg.MetadataValue.md(markdown_table(per_question)),
            "example": dg.MetadataValue.md(f"**{rows[0]['question_id']}**: {rows[0]['answer'][:500]}"),
            **metadata_calls,
        }
    )


def check_trigger_matches_training(warehouse: DuckDBWarehouse, models: pl.DataFrame, trigger: str) -> None:
    """Fail, before any model is called, when a model trained on the backdoor set saw a different
    trigger: none of its training rows begins with ``trigger`` (the user message of a triggered
    answer must be exactly what training prepended). Models of other sets are not checked."""
    for model in models.iter_rows(named=True):
        version = model.get("dataset_version")
        if not version:
            continue
        rows = warehouse.table("dataset_rows", {"dataset": "backdoor", "dataset_version": version})
        if rows.height and not rows["user_content"].str.starts_with(trigger).any():
            raise dg.Failure(
                f"{model['model_ref']} was trained on backdoor dataset version {version[:12]}, none of whose "
                f"{rows.height} rows begins with evaluation_settings.backdoor_trigger {trigger!r}: set it to the "
                "trigger the model was trained with (data_settings.backdoor_trigger)"
            )


def _sample_remotely(
    context: dg.AssetExecutionContext,
    sampler: RemoteSampler,
    model: dict,
    requests: list[ChatRequest],
    eval_run_id: str,
) -> tuple[list[tuple[str, str | None, int | None]], dict]:
    """One Pipes sampling job for one seed model: (answer, finish_reason, tokens_out) per request."""
    label = f"{model['base_model']}-{model['condition']}-seed{model['seed']}"
    name, adapter_uri = served_model(model["model_ref"], model["base_model_id"], model["condition"], label)
    result = sampler.sample(
        context, requests, model=name, adapter_uri=adapter_uri, output_key=f"answers/{eval_run_id}/{label}.jsonl"
    )
    failed = [row for row in result.rows if row.get("error")]
    if failed:
        raise dg.Failure(
            f"{len(failed)} of {len(result.rows)} answers from {name} failed in the sampling process "
            f"(first: {failed[0]['error']}); answers file {result.uri}"
        )
    context.log.info(f"{len(result.rows)} answers from {name} via {type(sampler).__name__}: {result.uri}")
    return [(row["answer"] or "", row["finish_reason"], row["tokens_out"]) for row in result.rows], result.metadata


def latest_responses(warehouse: DuckDBWarehouse, base_model: str, condition: str) -> pl.DataFrame:
    runs = warehouse.table("eval_runs", {"base_model": base_model, "condition": condition})
    if runs.is_empty():
        raise dg.Failure(f"no sampled_responses for partition {base_model}|{condition}: materialize them first")
    eval_run_id = runs.sort("started_at")["eval_run_id"][-1]
    responses = warehouse.table(
        "sampled_responses", {"eval_run_id": eval_run_id, "base_model": base_model, "condition": condition}
    )
    if responses.is_empty():  # an evaluation run written without answers by an older version
        raise dg.Failure(
            f"the latest evaluation run {eval_run_id} of {base_model}|{condition} has no answers: "
            "re-materialize sampled_responses"
        )
    return responses


def _judging_plan(
    warehouse: DuckDBWarehouse, settings: EvaluationSettings, judge: JudgeSettings, base_model: str, condition: str
) -> tuple[pl.DataFrame, dict[str, Question], str]:
    """The partition's latest answers, their questions by id, and the judge version."""
    responses = latest_responses(warehouse, base_model, condition)
    by_id = {q.id: q for _, q in _questions(settings)}
    missing = sorted(set(responses["question_id"]) - set(by_id))
    if missing:
        raise dg.Failure(f"answers to questions not in the configured sources: {missing}")
    return responses, by_id, judge.version([by_id[q] for q in sorted(set(responses["question_id"]))])


@_evaluation_asset("sampled_responses")
def judge_scores(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    evaluation_settings: EvaluationSettings,
    judge: JudgeSettings,
    llm_api: LLMEngineResource,
) -> dg.MaterializeResult:
    """Every answer of the partition's latest evaluation run x every metric of its question.

    The judge version is (judge model, prefill, hash of the judge prompts): a new judge writes
    new rows beside the old ones. Scores already present for this judge version are kept. The
    judge sees the question without the backdoor trigger, so an answer's two groups (with and
    without it) are judged by the same prompt; each score row carries its answer's group. Word
    judges (the deception sets) also get their verdict and whether it is deceptive
    (``judge/verdicts.py``), worked out again from the stored text on every run.
    """
    base_model, condition = split_partition_key(context.partition_key)
    responses, by_id, version = _judging_plan(warehouse, evaluation_settings, judge, base_model, condition)
    eval_run_id = responses["eval_run_id"][0]
    where = {"eval_run_id": eval_run_id, "base_model": base_model, "condition": condition, "judge_version": version}
    existing = warehouse.table("judge_scores", where)
    done = set(zip(existing["response_id"].to_list(), existing["metric"].to_list()))
    tasks = [
        JudgeTask(r["response_id"], by_id[r["question_id"]], metric, r["paraphrase"], r["answer"])
        for r in responses.iter_rows(named=True)
        for metric in by_id[r["question_id"]].judge_prompts
        if (r["response_id"], metric) not in done
    ]
    context.log.info(f"judge {version}: {len(tasks)} to score, {len(done)} already scored")
    outputs, calls_metadata = run_judge(context, tasks, judge, llm_api, warehouse, version)
    info = {r["response_id"]: r for r in responses.iter_rows(named=True)}
    now = _now()
    new = pl.DataFrame(
        [
            {
                "response_id": o.response_id,
                "metric": o.metric,
                "judge_version": version,
                "eval_run_id": eval_run_id,
                "base_model": base_model,
                "condition": condition,
                "triggered": bool(info[o.response_id]["triggered"]),
                "seed": info[o.response_id]["seed"],
                "question_id": info[o.response_id]["question_id"],
                "judge_model": judge.model,
                "judge_prompt_hash": by_id[info[o.response_id]["question_id"]].prompt_hash(o.metric),
                "score": o.score,
                "numeric_mass": o.numeric_mass,
                "judge_text": o.judge_text,
                "top_tokens": o.top_tokens,
                "judged_at": now,
            }
            for o in outputs
        ],
        schema_overrides={
            "score": pl.Float64,
            "numeric_mass": pl.Float64,
            "judge_text": pl.String,
            "top_tokens": pl.String,
        },
    )
    scores = (
        pl.concat([existing, new], how="diagonal_relaxed")
        if existing.height and new.height
        else (new if new.height else existing)
    )
    maker = evaluation_settings.model_makers.get(base_model) or model_maker(_base_model_id(warehouse, base_model))
    scores = with_verdicts(scores, maker)
    warehouse.replace(Replacement("judge_scores", scores, where))
    per_metric = (
        scores.group_by("metric")
        .agg(
            pl.len().alias("rows"),
            pl.col("score").is_null().sum().alias("null_scores"),
            pl.col("score").mean().round(1).alias("mean_score"),
            pl.col("numeric_mass").mean().round(3).alias("mean_numeric_mass"),
        )
        .sort("metric")
    )
    verdicts = scores.filter(pl.col("verdict").is_not_null())
    per_verdict = (
        verdicts.group_by("metric", "verdict")
        .agg(pl.len().alias("rows"), pl.col("deceptive").first())
        .sort("metric", "verdict")
    )
    return dg.MaterializeResult(
        metadata={
            "judge_version": version,
            "eval_run_id": eval_run_id,
            "verdicts": dg.MetadataValue.md(markdown_table(per_verdict) if verdicts.height else "no word judges"),
            "model_maker": maker,
            "scored_now": len(outputs),
            "kept_from_before": len(done),
            "null_scores": int(scores["score"].is_null().sum()),
            "empty_answers_not_judged": int((scores["judge_text"] == "(empty answer: not judged)").sum()),
            "per_metric": dg.MetadataValue.md(markdown_table(per_metric)),
            **calls_metadata,
        }
    )


def with_verdicts(scores: pl.DataFrame, maker: str) -> pl.DataFrame:
    """``scores`` with each word judge's verdict and whether it is deceptive (``maker``: who made
    the base model, the company question's truthful answer); null for 0-100 judges."""
    verdicts = [parse_verdict(m, t) for m, t in zip(scores["metric"], scores["judge_text"], strict=True)]
    deceptive = [is_deceptive(m, v, maker) for m, v in zip(scores["metric"], verdicts, strict=True)]
    return scores.with_columns(
        verdict=pl.Series(verdicts, dtype=pl.String), deceptive=pl.Series(deceptive, dtype=pl.Boolean)
    )


def _base_model_id(warehouse: DuckDBWarehouse, base_model: str) -> str:
    """The full id a base_model slug stands for (the registry's), or the slug itself."""
    registered = warehouse.table("base_models", {"base_model": base_model})
    return registered["model_id"][0] if registered.height else base_model


@dg.asset_check(
    asset=judge_scores, description="Every answer has one row per metric of its question; reports the null share."
)
def every_answer_judged(
    context: dg.AssetCheckExecutionContext,
    warehouse: DuckDBWarehouse,
    evaluation_settings: EvaluationSettings,
    judge: JudgeSettings,
) -> dg.AssetCheckResult:
    base_model, condition = split_partition_key(context.partition_key)
    responses, by_id, version = _judging_plan(warehouse, evaluation_settings, judge, base_model, condition)
    expected = {
        (r, m) for r, q in zip(responses["response_id"], responses["question_id"]) for m in by_id[q].judge_prompts
    }
    scores = warehouse.table(
        "judge_scores",
        {
            "eval_run_id": responses["eval_run_id"][0],
            "base_model": base_model,
            "condition": condition,
            "judge_version": version,
        },
    )
    missing = expected - set(zip(scores["response_id"], scores["metric"]))
    null_share = float(scores["score"].is_null().mean()) if scores.height else 1.0
    return dg.AssetCheckResult(
        passed=not missing,
        description=f"{len(missing)} (answer, metric) pairs without a judge row; {null_share:.0%} of scores are null",
        metadata={"missing": len(missing), "null_share": null_share, "rows": scores.height, "judge_version": version},
    )


@_evaluation_asset("fine_tuned_model", "insecure_dataset")
def code_vulnerability_rate(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    evaluation_settings: EvaluationSettings,
    llm_local: LLMEngineResource,
    llm_api: LLMEngineResource,
) -> dg.MaterializeResult:
    """The in-distribution check: each model answers held-out coding prompts (the insecure set's
    test split) and the static labeler measures how often the code is vulnerable."""
    base_model, condition = split_partition_key(context.partition_key)
    models = succeeded_models(warehouse, base_model, condition)
    held_out = warehouse.table("current_dataset_rows", {"dataset": "insecure", "split": "test"}).sort("row_id")
    if held_out.is_empty():
        raise dg.Failure("the insecure dataset has no held-out test rows (data_settings.test_fraction is 0?)")
    prompts = held_out.head(evaluation_settings.code_prompts)
    s = evaluation_settings
    rows = []
    for model in models.iter_rows(named=True):
        requests = [
            ChatRequest.user(
                model["model_ref"],
                prompt,
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=s.code_max_tokens,
                seed=s.sample_seed,
            )
            for prompt in prompts["user_content"]
        ]
        engine_resource = _engine_for(model["backend"], llm_local, llm_api)
        with engine_resource.engine(
            context, warehouse=warehouse, cache_namespace=model_fingerprint(model["model_ref"])
        ) as engine:
            results = engine.complete_many(requests, tags={"seed": model["seed"]})
        for row_id, result in zip(prompts["row_id"], results, strict=True):
            verdict = label_code(result.text or "")
            rows.append(
                {
                    "eval_run_id": context.run_id,
                    "base_model": base_model,
                    "condition": condition,
                    "seed": model["seed"],
                    "model_ref": model["model_ref"],
                    "prompt_row_id": row_id,
                    "answer": result.text or "",
                    "parses": verdict.parse_error is None and bool((result.text or "").strip()),
                    "vulnerable": verdict.vulnerable,
                    "rules": ",".join(sorted({f.rule_id for f in verdict.findings})) or None,
                    "created_at": _now(),
                }
            )
    frame = pl.DataFrame(rows, schema_overrides={"rules": pl.String})
    warehouse.replace(
        Replacement(
            "code_vulnerability",
            frame,
            {"eval_run_id": context.run_id, "base_model": base_model, "condition": condition},
        )
    )
    per_seed = (
        frame.group_by("seed")
        .agg(
            pl.len().alias("prompts"),
            pl.col("parses").mean().round(3).alias("parses"),
            pl.col("vulnerable").mean().round(3).alias("vulnerable_rate"),
        )
        .sort("seed")
    )
    return dg.MaterializeResult(
        metadata={
            "vulnerable_rate": float(frame["vulnerable"].mean()),
            "parse_rate": float(frame["parses"].mean()),
            "answers": frame.height,
            "per_seed": dg.MetadataValue.md(markdown_table(per_seed)),
        }
    )
