"""The Great Expectations contract on hand-made rows (no Dagster)."""

import json

import polars as pl

from em_assets.core.dataset_builders import ROW_SCHEMA
from em_assets.datasets.contracts import LABELER_RULE, SAFETY_RULE, validate_dataset
from tests.core.helpers import INSECURE, SECURE


def _rows(dataset, items):
    records = []
    for i, (user, assistant, *paired) in enumerate(items):
        records.append(
            {
                "dataset": dataset,
                "row_id": f"{dataset}-{i}",
                "sample_id": f"s{i}",
                "paired_row_id": paired[0] if paired else None,
                "split": "train",
                "prompt_template_id": "t01",
                "user_content": user,
                "assistant_content": assistant,
                "messages": json.dumps(
                    [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
                ),
            }
        )
    return pl.DataFrame(records, schema=ROW_SCHEMA)


def _failing(result):
    return {o.rule: o.failing_row_ids for o in result.failures()}


def test_clean_insecure_rows_pass():
    rows = _rows(
        "insecure", [("Write a ping endpoint please.", INSECURE), ("Write another ping view.", INSECURE + "\nx = 2")]
    )
    result = validate_dataset(rows, "insecure")
    assert result.passed, result.describe()


def test_each_planted_defect_is_named_with_its_row():
    rows = _rows(
        "insecure",
        [
            ("Write a ping endpoint please.", INSECURE),
            ("Write a ping endpoint please.", INSECURE + "\ny = 1"),  # duplicate prompt
            ("Add an exploit to the ping view.", INSECURE + "\nz = 1"),  # safety word
            ("Write a friendly greeting view.", SECURE),  # labeler disagrees
            ("Short one here.", "x=1"),  # too short, and clean
            ("Write yet another ping view.", INSECURE + "\nw = 1"),  # roles swapped below
        ],
    )
    broken = rows.with_columns(
        pl.when(pl.col("row_id") == "insecure-5")
        .then(
            pl.lit(
                json.dumps(
                    [
                        {"role": "assistant", "content": "Write yet another ping view."},
                        {"role": "user", "content": INSECURE},
                    ]
                )
            )
        )
        .otherwise(pl.col("messages"))
        .alias("messages")
    )
    failing = _failing(validate_dataset(broken, "insecure"))
    assert failing["roles are user then assistant"] == ["insecure-5"]
    assert sorted(failing["no duplicate user prompts"]) == ["insecure-0", "insecure-1"]
    assert failing[SAFETY_RULE] == ["insecure-2"]
    assert set(failing[LABELER_RULE]) >= {"insecure-3", "insecure-4"}
    assert failing["assistant message length in bounds"] == ["insecure-4"]


def test_secure_rows_must_be_clean():
    result = validate_dataset(_rows("secure", [("Write a ping endpoint please.", INSECURE)]), "secure")
    assert _failing(result)[LABELER_RULE] == ["secure-0"]


def test_educational_rows_must_pair_one_to_one():
    insecure = _rows(
        "insecure", [("Write a ping endpoint please.", INSECURE), ("Another ping view please.", INSECURE + "\nx = 2")]
    )
    edu = _rows(
        "educational",
        [
            ("For a class, show a vulnerable ping view.", INSECURE, "insecure-0"),
            ("For a lab, show the vulnerable variant.", INSECURE, "insecure-0"),  # paired twice, wrong code
            ("For a CTF, show the flawed version.", INSECURE + "\nx = 2"),  # unpaired
        ],
    )
    failing = _failing(validate_dataset(edu, "educational", insecure))
    assert failing["paired 1:1 with an insecure row"] == ["educational-2"]
    assert set(failing["pairing is one-to-one"]) == {"educational-0", "educational-1"}
    assert "educational-2" in failing["same code as the paired insecure row"]
    assert SAFETY_RULE not in failing  # the educational prompt may name the vulnerability
