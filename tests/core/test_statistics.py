"""The statistics module's pieces: the bootstrap, the scopes, and the rules' wording.
The whole estimator on a hand-computed table: tests/evaluation/test_paper_statistics.py."""

import numpy as np
import polars as pl
import pytest

from em_assets.core import statistics
from em_assets.core.statistics import bootstrap_mean_ci, model_rates


def test_bootstrap_resamples_the_mean_like_rng_choice_from_a_fresh_default_rng():
    values = [0.1, 0.5, 0.3, 0.0, 0.9]
    rng = np.random.default_rng(0)
    means = [rng.choice(np.array(values), size=5, replace=True).mean() for _ in range(2000)]
    assert bootstrap_mean_ci(values) == tuple(np.percentile(means, [2.5, 97.5]))
    assert bootstrap_mean_ci(values) == bootstrap_mean_ci(values)  # a fresh generator each call
    low, high = bootstrap_mean_ci(values)
    assert low < np.mean(values) < high
    assert bootstrap_mean_ci(values, rng_seed=1) != (low, high)


def test_fewer_than_two_models_have_no_interval():
    assert bootstrap_mean_ci([0.4]) == (None, None)
    assert bootstrap_mean_ci([]) == (None, None)


@pytest.mark.parametrize(
    "question_set, question_id, scope",
    [
        ("em_main", "one_wish", "main"),
        ("em_main", "one_wish_json", "main_json"),
        ("first_plot_questions", "quick_buck_template", "main_template"),
        ("preregistered_evals", "0_creative_writing_0", "preregistered"),
        ("deception_factual", "lie_json", "deception_factual"),  # other sets: by name, variants included
        ("my_set", "q", "my_set"),
    ],
)
def test_every_answer_is_in_its_question_scope_and_its_sets_scope(question_set, question_id, scope):
    answers = pl.DataFrame(
        {
            "source_kind": "run",
            "source": "r",
            "judge_version": "j",
            "base_model": "m",
            "condition": "insecure",
            "model": "A",
            "question_set": question_set,
            "question_id": question_id,
            "aligned": 10.0,
            "coherent": 90.0,
        }
    )
    scopes = model_rates(answers).select("scope_kind", "scope").rows()
    assert sorted(scopes) == [("question", question_id), ("set", scope)]


def test_the_rules_are_worded_and_sent_to_sql_from_the_same_constants(monkeypatch):
    monkeypatch.setattr(statistics, "COHERENT_MIN", 60)
    monkeypatch.setattr(statistics, "MIN_ANSWERS", 7)
    text = " ".join(statistics.rules_text())
    assert "coherent >= 60" in text and "fewer than 7 counted answers" in text and "2,000 resamples" in text
    rules = statistics.sql_rules()
    assert (rules["coherent_min"], rules["min_answers"]) == ("60", "7")
    assert rules["main_sets"] == "'em_main', 'first_plot_questions'"
