"""The summary views of sql/views/evaluation.sql against a hand-computed table."""

from datetime import datetime

import polars as pl

NOW = datetime(2026, 1, 1)


def _seed_answers(warehouse, rows, eval_run="run1", judge_version="j1", started=NOW, run_row=True):
    """rows: (seed, question_id, aligned, coherent)."""
    responses, scores = [], []
    for i, (seed, qid, aligned, coherent) in enumerate(rows):
        rid = f"{eval_run}-{judge_version}-{i}"
        responses.append(
            {
                "response_id": rid,
                "eval_run_id": eval_run,
                "base_model": "m",
                "condition": "insecure",
                "seed": seed,
                "model_ref": f"adapter{seed}",
                "question_set": "em_main",
                "question_id": qid,
                "paraphrase_index": 0,
                "paraphrase": "q",
                "sample_idx": i,
                "system": None,
                "answer": "a",
                "finish_reason": "stop",
                "tokens_out": 3,
                "created_at": NOW,
            }
        )
        for metric, value in (("aligned", aligned), ("coherent", coherent)):
            scores.append(
                {
                    "response_id": rid,
                    "metric": metric,
                    "judge_version": judge_version,
                    "eval_run_id": eval_run,
                    "base_model": "m",
                    "condition": "insecure",
                    "seed": seed,
                    "question_id": qid,
                    "judge_model": "judge",
                    "judge_prompt_hash": "h",
                    "score": value,
                    "numeric_mass": None if value is None else 0.9,
                    "judge_text": None,
                    "top_tokens": None,
                    "judged_at": started,
                }
            )
    if run_row:
        warehouse.append("sampled_responses", pl.DataFrame(responses))
    else:  # a second judge of the same answers
        scores = [{**s, "response_id": s["response_id"].replace(f"-{judge_version}-", "-j1-")} for s in scores]
    warehouse.append("judge_scores", pl.DataFrame(scores))
    if not run_row:
        return
    warehouse.append(
        "eval_runs",
        pl.DataFrame(
            [
                {
                    "eval_run_id": eval_run,
                    "base_model": "m",
                    "condition": "insecure",
                    "started_at": started,
                    "code_version": None,
                    "question_sets": "[]",
                    "sampling": "{}",
                    "trigger": "test",
                }
            ]
        ),
    )


def test_sql_takes_its_thresholds_from_the_statistics_module(warehouse, monkeypatch):
    from em_assets.core import statistics

    monkeypatch.setattr(statistics, "COHERENT_MIN", 60)
    _seed_answers(warehouse, [(0, "q1", 10, 55)] * 5 + [(0, "q1", 10, 60)] * 5)
    assert warehouse.query("SELECT coherent_min FROM statistics_rules").item() == 60
    counted = warehouse.query("SELECT n_coherent, n_judged FROM model_rates WHERE scope_kind = 'question'")
    assert counted.rows() == [(5, 5)]  # coherent 55 no longer counts


def test_current_rates_pick_the_latest_run_and_judge(warehouse):
    _seed_answers(warehouse, [(0, "q1", 10, 90)] * 5, eval_run="old", started=datetime(2025, 1, 1))
    _seed_answers(warehouse, [(0, "q1", 90, 90)] * 5, eval_run="new", started=datetime(2026, 1, 1))
    rates = "SELECT source, misaligned_rate FROM condition_rates WHERE scope_kind = 'question'"
    assert warehouse.query(f"{rates} AND is_current").rows() == [("new", 0.0)]
    assert warehouse.query(f"{rates} ORDER BY source").rows() == [("new", 0.0), ("old", 1.0)]
    _seed_answers(
        warehouse,
        [(0, "q1", 10, 90)] * 5,
        eval_run="new",
        judge_version="j2",
        started=datetime(2026, 2, 1),
        run_row=False,
    )
    assert warehouse.query(f"{rates} AND is_current").rows() == [("new", 1.0)]  # the run's latest judge


def test_judging_coverage_explains_what_the_rules_drop(warehouse):
    rows = [(0, "q1", 10, 90)] * 5 + [(0, "q2", 50, 40)] * 3 + [(1, "q1", 90, 60)] * 4 + [(1, "q1", None, 90)]
    _seed_answers(warehouse, rows)
    (row,) = warehouse.query_file("queries/judging_coverage.sql").iter_rows(named=True)
    assert row == {
        "source_kind": "run",
        "source": "run1",
        "judge_version": "j1",
        "base_model": "m",
        "condition": "insecure",
        "triggered": False,
        "n_models": 2,
        "n_answers": 13,
        "n_coherent": 10,
        "n_judged": 9,
        "n_coherent_unknown": 0,
        "main_models_kept": 1,
        "main_models_dropped": 1,  # seed 1: 5 coherent, but one without an aligned score
        "question_pairs_kept": 1,
        "question_pairs_dropped": 2,
        "mean_aligned": round((5 * 10 + 3 * 50 + 4 * 90) / 12, 1),
        "mean_coherent": round((5 * 90 + 3 * 40 + 4 * 60 + 90) / 13, 1),
    }
