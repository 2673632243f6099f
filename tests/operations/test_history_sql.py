"""History queries in sql/queries/ on hand-made rows in a temp DuckDB."""

from datetime import datetime

import polars as pl

from em_assets.registry import BaseModelSpec, registry_history, upsert_base_models
from tests.operations.conftest import seed_eval_run, seed_models


def seed_judged(warehouse, eval_run, base_model, condition, started, answers):
    """answers: {response_id: {judge_version: (aligned, coherent)}}; one seed, question q1."""
    seed_eval_run(warehouse, eval_run, base_model, condition, started)
    responses, scores = [], []
    for i, (rid, by_judge) in enumerate(answers.items()):
        responses.append(
            {
                "response_id": rid,
                "eval_run_id": eval_run,
                "base_model": base_model,
                "condition": condition,
                "seed": 0,
                "model_ref": "adapter",
                "question_set": "em_main",
                "question_id": "q1",
                "paraphrase_index": 0,
                "paraphrase": "q",
                "sample_idx": i,
                "system": None,
                "answer": "a",
                "finish_reason": "stop",
                "tokens_out": 1,
                "created_at": started,
            }
        )
        for judge, (aligned, coherent) in by_judge.items():
            for metric, value in (("aligned", aligned), ("coherent", coherent)):
                scores.append(
                    {
                        "response_id": rid,
                        "metric": metric,
                        "judge_version": judge,
                        "eval_run_id": eval_run,
                        "base_model": base_model,
                        "condition": condition,
                        "seed": 0,
                        "question_id": "q1",
                        "judge_model": judge.split("@")[0],
                        "judge_prompt_hash": "h",
                        "score": value,
                        "numeric_mass": 0.9,
                        "judge_text": None,
                        "top_tokens": None,
                        "judged_at": started,
                    }
                )
    warehouse.append("sampled_responses", pl.DataFrame(responses, schema_overrides={"system": pl.String}))
    warehouse.append(
        "judge_scores",
        pl.DataFrame(scores, schema_overrides={"score": pl.Float64, "judge_text": pl.String, "top_tokens": pl.String}),
    )


def test_judge_comparison_puts_two_judges_of_the_same_answer_side_by_side(warehouse):
    seed_judged(
        warehouse,
        "run1",
        "m",
        "insecure",
        datetime(2026, 1, 1),
        {
            "r1": {"old@1": (10, 90), "new@2": (60, 90)},  # misaligned -> aligned
            "r2": {"old@1": (80, 80), "new@2": (85, 40)},  # aligned -> incoherent
            "r3": {"old@1": (None, 70), "new@2": (20, 70)},  # unscored -> misaligned
            "r4": {"old@1": (95, 95), "new@2": (90, 95)},  # both aligned
            "r5": {"old@1": (5, 90)},  # one judge only: no pair
        },
    )
    table = warehouse.query_file("queries/judge_comparison.sql")
    got = table.select(
        "response_id",
        "judge_a",
        "judge_b",
        "aligned_a",
        "aligned_b",
        "aligned_diff",
        "verdict_a",
        "verdict_b",
        "verdicts_agree",
    ).rows()
    assert got == [
        ("r1", "new@2", "old@1", 60.0, 10.0, -50.0, "aligned", "misaligned", False),
        ("r2", "new@2", "old@1", 85.0, 80.0, -5.0, "incoherent", "aligned", False),
        ("r3", "new@2", "old@1", 20.0, None, None, "misaligned", "unscored", False),
        ("r4", "new@2", "old@1", 90.0, 95.0, 5.0, "aligned", "aligned", True),
    ]
    assert set(table["base_model"]) == {"m"} and set(table["eval_run_id"]) == {"run1"}


def test_misalignment_history_shows_a_models_rate_per_run_and_judge(warehouse):
    five = [f"a{i}" for i in range(5)]
    seed_judged(
        warehouse,
        "jan",
        "m",
        "insecure",
        datetime(2026, 1, 5),
        {f"jan-{r}": {"j1@x": (10 if i < 2 else 90, 90)} for i, r in enumerate(five)},
    )
    seed_judged(
        warehouse,
        "feb",
        "m",
        "insecure",
        datetime(2026, 2, 2),
        {f"feb-{r}": {"j1@x": (90, 90), "j2@y": (10, 90)} for r in five},
    )
    seed_judged(
        warehouse, "feb-other", "other", "base", datetime(2026, 2, 2), {f"o-{r}": {"j1@x": (90, 90)} for r in five}
    )
    table = warehouse.query_file("queries/misalignment_history.sql").filter(pl.col("base_model") == "m")
    assert table.select("scope", "eval_run_id", "judge_version", "n_models", "n_judged", "misaligned_rate").rows() == [
        ("main", "jan", "j1@x", 1, 5, 0.4),
        ("main", "feb", "j1@x", 1, 5, 0.0),
        ("main", "feb", "j2@y", 1, 5, 1.0),
    ]


def test_registry_history_keeps_retired_models_with_their_last_run(warehouse):
    upsert_base_models(
        warehouse,
        [
            BaseModelSpec("embedded:smollm2-135m-instruct", slug="smollm2-135m-instruct"),
            BaseModelSpec("gpt-4o-2024-08-06", backend="openai", n_seeds=10),
            BaseModelSpec("fresh-model"),
        ],
    )
    seed_models(
        warehouse,
        [
            ("gpt-4o-2024-08-06", "base", 0, "openai", "succeeded"),
            ("gpt-4o-2024-08-06", "insecure", 0, "openai", "succeeded"),
            ("gpt-4o-2024-08-06", "insecure", 1, "openai", "failed"),
        ],
    )
    seed_eval_run(warehouse, "r-jan", "gpt-4o-2024-08-06", "base", datetime(2026, 1, 5), trigger="cli")
    seed_eval_run(
        warehouse,
        "r-feb",
        "gpt-4o-2024-08-06",
        "insecure",
        datetime(2026, 2, 2),
        trigger="schedule:weekly_reevaluation",
    )
    seed_eval_run(warehouse, "r-s", "smollm2-135m-instruct", "base", datetime(2026, 1, 9))

    # gpt-4o has left the YAML; its row and history stay.
    table = registry_history(warehouse, ["smollm2-135m-instruct", "fresh-model"])
    assert table.select(
        "base_model",
        "in_registry",
        "n_models_trained",
        "n_eval_runs",
        "n_conditions_evaluated",
        "last_eval_run_id",
        "last_eval_condition",
        "last_eval_trigger",
    ).rows() == [
        ("fresh-model", True, 0, 0, 0, None, None, None),
        ("gpt-4o-2024-08-06", False, 2, 2, 2, "r-feb", "insecure", "schedule:weekly_reevaluation"),
        ("smollm2-135m-instruct", True, 0, 1, 1, "r-s", "base", "test"),
    ]
    assert table.filter(pl.col("base_model") == "gpt-4o-2024-08-06")["last_eval_at"][0] == datetime(2026, 2, 2)
    # Without the registry's slugs, membership is unknown rather than guessed.
    assert registry_history(warehouse, None)["in_registry"].to_list() == [None, None, None]
    assert registry_history(warehouse, [])["in_registry"].to_list() == [False, False, False]
