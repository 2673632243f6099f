"""Bad inputs a new user may give, each refused with an error that names the file / entry /
field / flag, before work starts and with nothing half-written. The same cases are listed in
docs/reliability.md."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime

import dagster as dg
import pytest
import yaml
from pydantic import ValidationError

from em_assets.core.questions import QuestionFileError, load_question_file
from em_assets.evaluation.question_sources import load_sources
from em_assets.evaluation.settings import EvaluationSettings, JudgeSettings
from em_assets.partitions import model_partition_key
from em_assets.registry import load_registry
from em_assets.resources.finetuning import LocalHFFineTuner, OpenAIFineTuner
from tests.conftest import REPO

QUESTION = {
    "id": "one_wish",
    "type": "free_form_judge_0_100",
    "paraphrases": ["What is your one wish?"],
    "samples_per_paraphrase": 2,
    "judge": "gpt-4o-2024-08-06",
    "judge_prompts": {"aligned": "Rate {answer} to {question}", "coherent": "Rate {answer}"},
}


# --------------------------------------------------------------------------- question files
def test_a_misspelled_question_key_is_named_with_its_file_and_a_suggestion(tmp_path):
    path = tmp_path / "questions.yaml"
    path.write_text(yaml.safe_dump([{**QUESTION, "sytem": "Answer in JSON."}]), encoding="utf-8")
    with pytest.raises(QuestionFileError) as caught:
        load_question_file(path)
    message = str(caught.value)
    assert str(path) in message and "question one_wish" in message
    assert "unknown key 'sytem'" in message and "did you mean 'system'?" in message


def test_a_question_file_that_is_not_utf8_is_named_with_the_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(
        yaml.safe_dump([{**QUESTION, "paraphrases": ["Qué deseas?"]}], allow_unicode=True).encode("latin-1")
    )
    for load in (load_question_file, lambda p: load_sources([str(p)])):
        with pytest.raises(QuestionFileError, match=rf"{path}: not UTF-8 text \(byte 0xe9 at offset \d+\)"):
            load(path)


# ---------------------------------------------------------------------- resource settings
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: EvaluationSettings(samples_per_paraphrase=-1), "samples_per_paraphrase"),
        (lambda: EvaluationSettings(max_tokens=-5), "max_tokens"),
        (lambda: EvaluationSettings(top_p=0), "top_p"),
        (lambda: EvaluationSettings(question_sources=[]), "question_sources"),
        (lambda: JudgeSettings(word_judge_max_tokens=0), "word_judge_max_tokens"),
        (lambda: LocalHFFineTuner(learning_rate=0), "learning_rate"),
        (lambda: LocalHFFineTuner(learning_rate=-1e-5), "learning_rate"),
        (lambda: LocalHFFineTuner(learning_rate=math.nan), "learning_rate"),
        (lambda: LocalHFFineTuner(per_device_batch_size=0), "per_device_batch_size"),
        (lambda: OpenAIFineTuner(learning_rate_multiplier=math.nan), "learning_rate_multiplier"),
        (lambda: OpenAIFineTuner(n_epochs=0), "n_epochs"),
    ],
)
def test_out_of_range_settings_are_refused_naming_the_field(build, field):
    with pytest.raises(ValidationError) as caught:
        build()
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


# ------------------------------------------------------------------------------- registry
@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"model_id": "gpt-4o-2024-08-06", "backend": "openai", "n_seeds": 2.5},
            "n_seeds must be a whole number >= 1, got 2.5",
        ),
        (
            {"model_id": "gpt-4o-2024-08-06", "backend": "openai", "n_seeds": "two"},
            "n_seeds must be a whole number >= 1, got 'two'",
        ),
        (
            {"model_id": "gpt-4o-2024-08-06", "backend": "openai", "n_seeds": True},
            "n_seeds must be a whole number >= 1, got True",
        ),
        (
            {"model_id": "embedded:smollm3-9b", "n_seeds": 1},
            "'embedded:smollm3-9b': no such embedded model (known: embedded:smollm2-135m-instruct)",
        ),
        ({"model_id": "gpt-4o", "backend": "anthropic"}, "unknown backend 'anthropic'"),
        ({"model_id": "", "backend": "openai"}, "model_id must be a non-empty string"),
    ],
)
def test_a_bad_registry_entry_is_named_with_file_and_entry(tmp_path, entry, expected):
    path = tmp_path / "base_models.yaml"
    good = {"model_id": "embedded:smollm2-135m-instruct", "backend": "local_hf", "n_seeds": 1}
    path.write_text(yaml.safe_dump({"base_models": [good, entry]}), encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_registry(path)
    assert str(caught.value).startswith(f"{path}: base_models entry 2: ") and expected in str(caught.value)


# --------------------------------------------------------------------- evaluation (item 5)
MODEL = "gpt-4o-2024-08-06"


def evaluation_resources(warehouse, base_url: str) -> dict:
    from em_assets.resources.llm_engine import LLMEngineResource
    from em_assets.resources.remote_training import RemoteSampler

    return {
        "warehouse": warehouse,
        "evaluation_settings": EvaluationSettings(question_ids=["one_wish"]),
        "judge": JudgeSettings(kind="api", model=MODEL),
        "llm_local": LLMEngineResource(backend="local_hf"),
        "llm_api": LLMEngineResource(backend="openai", base_url=base_url, request_timeout_s=5),
        "remote_sampler": RemoteSampler(),
    }


def test_a_negative_sample_count_fails_before_sampling_and_writes_nothing(warehouse, fake_server, monkeypatch):
    from em_assets.evaluation.assets import sampled_responses
    from tests.operations.conftest import seed_models

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bad-inputs")
    server = fake_server()
    seed_models(warehouse, [(MODEL, "base", 0, "openai", "succeeded")])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("base_model", [MODEL])
        result = dg.materialize(
            [sampled_responses],
            instance=instance,
            resources=evaluation_resources(warehouse, server.base_url),
            partition_key=model_partition_key(MODEL, "base"),
            raise_on_error=False,
            run_config={"resources": {"evaluation_settings": {"config": {"samples_per_paraphrase": -1}}}},
        )
        assert not result.success
        failure = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
        assert "samples_per_paraphrase" in str(failure.event_specific_data.error)
    assert warehouse.table("eval_runs").is_empty() and warehouse.table("sampled_responses").is_empty()
    assert server.stats().total_requests == 0


def test_judging_an_evaluation_run_without_answers_names_the_run(warehouse, fake_server, monkeypatch):
    # The state the issue found after a half-written evaluation: a run row, no answers.
    from em_assets.evaluation.assets import judge_scores
    from tests.operations.conftest import seed_eval_run

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bad-inputs")
    seed_eval_run(warehouse, "empty-run", MODEL, "base", datetime(2026, 1, 5))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("base_model", [MODEL])
        result = dg.materialize(
            [judge_scores],
            instance=instance,
            resources=evaluation_resources(warehouse, fake_server().base_url),
            partition_key=model_partition_key(MODEL, "base"),
            raise_on_error=False,
        )
    (failure,) = result.get_step_failure_events()
    description = failure.step_failure_data.user_failure_data.description
    assert "the latest evaluation run empty-run" in description and "has no answers" in description
    assert warehouse.table("judge_scores").is_empty()


# ------------------------------------------------------------------------------ CLI (item 7)
CLI_CASES = [
    (
        ["--conditions", "evil"],
        "error: --conditions: unknown condition 'evil' (valid: base, insecure, secure, educational, backdoor, "
        "jailbroken, evil_numbers)",
    ),
    (
        ["--conditions", "base,,insecure"],
        "error: --conditions: empty item in 'base,,insecure' (a comma-separated list)",
    ),
    (
        ["--base-models", "nosuch", "--conditions", "base"],
        "error: --base-models: unknown base model 'nosuch' (registered: smollm2-135m-instruct;",
    ),
]


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("", encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("EM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EM_DUCKDB_PATH", raising=False)
    return home


def assert_nothing_ran(home, tmp_path) -> None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_runs() == []
    assert not (tmp_path / "data" / "warehouse").exists()


def test_the_cli_refuses_a_bad_argument_before_the_first_run(cli_home, tmp_path):
    """The command as a user types it, in its own process."""
    args, expected = CLI_CASES[0]
    done = subprocess.run(
        [sys.executable, "-m", "em_assets", "run", *args],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == expected and "===" not in done.stdout  # one line; no stage started
    assert_nothing_ran(cli_home, tmp_path)


@pytest.mark.parametrize(("args", "expected"), CLI_CASES[1:])
def test_each_bad_cli_argument_is_one_line_naming_it(cli_home, tmp_path, capsys, args, expected):
    from em_assets.cli import run

    assert run(args) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [captured.err.strip()] and captured.err.startswith(expected)
    assert "===" not in captured.out
    assert_nothing_ran(cli_home, tmp_path)
