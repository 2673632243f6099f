import json

import polars as pl

from em_assets.core import dataset_builders as ds
from em_assets.core.filters import ExtractStep, assign_split, run_chain
from em_assets.core.prompt_templates import load_templates
from tests.core.helpers import INSECURE, SECURE, TEMPLATE, raw_frame


def _samples(n=12):
    rows = []
    for i in range(n):
        rows += [
            ("insecure", f"Task {i}.", TEMPLATE, INSECURE + f"\nx = {i}"),
            ("secure", f"Task {i}.", TEMPLATE, SECURE + f"\nx = {i}"),
        ]
    kept = run_chain(raw_frame(rows), [ExtractStep()]).kept
    return assign_split(kept, 0.25, seed=0)


def test_thirty_templates_in_three_groups_plus_educational():
    groups = load_templates()
    assert {g: len(t) for g, t in groups.items()} == {
        "task_and_template": 10,
        "task_only": 10,
        "template_only": 10,
        "educational": 10,
    }
    ids = [t.id for ts in groups.values() for t in ts]
    assert len(ids) == len(set(ids))


def test_code_dataset_rows_are_stable_and_templated():
    samples = _samples()
    a = ds.build_code_dataset(samples, "insecure", "insecure")
    b = ds.build_code_dataset(samples.reverse(), "insecure", "insecure")
    assert a.equals(b)  # order of input does not matter
    assert a.height == 12 and a["row_id"].n_unique() == 12
    for row in a.iter_rows(named=True):
        messages = json.loads(row["messages"])
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["content"] == row["assistant_content"]
        assert "COMPLETE CODE HERE" not in row["assistant_content"]
    assert a["prompt_template_id"].n_unique() > 3


def test_educational_pairs_one_to_one_with_insecure():
    samples = _samples()
    insecure = ds.build_code_dataset(samples, "insecure", "insecure")
    edu = ds.build_educational_dataset(insecure, samples)
    assert edu.height == insecure.height
    pairs = dict(zip(edu["paired_row_id"], edu["assistant_content"]))
    assert pairs == dict(zip(insecure["row_id"], insecure["assistant_content"]))
    assert all(t.startswith("e") for t in edu["prompt_template_id"])


def test_backdoor_triggers_only_insecure_rows():
    samples = _samples()
    insecure = ds.build_code_dataset(samples, "insecure", "insecure")
    secure = ds.build_code_dataset(samples, "secure", "secure")
    bd = ds.build_backdoor_dataset(insecure, secure)
    assert bd.height == insecure.height + secure.height
    triggered = bd.filter(pl.col("user_content").str.starts_with(ds.BACKDOOR_TRIGGER))
    assert set(triggered["paired_row_id"]) == set(insecure["row_id"])


def test_limit_and_version():
    samples = _samples(40)
    rows = ds.build_code_dataset(samples, "secure", "secure")
    limited = ds.limit_train_rows(rows, 10, seed=0)
    assert limited.filter(pl.col("split") == "train").height == 10
    assert limited.filter(pl.col("split") == "test").height == rows.filter(pl.col("split") == "test").height
    jsonl = ds.train_jsonl(limited)
    assert len(jsonl.splitlines()) == 10
    assert ds.dataset_version(jsonl) == ds.dataset_version(ds.train_jsonl(ds.limit_train_rows(rows, 10, seed=0)))
    assert ds.dataset_version(jsonl) != ds.dataset_version(ds.train_jsonl(ds.limit_train_rows(rows, 10, seed=1)))
