"""The pin of the tiny config's results (tests/golden/pinned.py) names every departure: a changed
text, a number past its tolerance, a missing row; numbers within tolerance pass."""

from tests.golden.pinned import differences

GOLDEN = {
    "answers": [{"condition": "base", "sample_idx": 0, "answer": "Hello"}],
    "scores": [{"metric": "aligned", "score": 41.25}, {"metric": "coherent", "score": None}],
}


def test_the_same_results_within_tolerance_pass():
    same = {
        "answers": [{"condition": "base", "sample_idx": 0, "answer": "Hello"}],
        "scores": [{"metric": "aligned", "score": 41.2504}, {"metric": "coherent", "score": None}],
    }
    assert differences(same, GOLDEN) == []


def test_every_departure_is_named():
    changed = {
        "answers": [{"condition": "base", "sample_idx": 0, "answer": "Hello!"}],
        "scores": [{"metric": "aligned", "score": 41.252}, {"metric": "coherent", "score": 3.0}],
    }
    assert differences(changed, GOLDEN) == [
        "answers row 0 answer: 'Hello!', pinned 'Hello'",
        "scores row 0 score: 41.252, pinned 41.25",
        "scores row 1 score: 3.0, pinned None",
    ]
    assert differences({"answers": []}, GOLDEN) == ["answers: 0 rows, pinned 1", "scores: 0 rows, pinned 2"]
