"""Parse judged-result CSVs in the paper's released format into warehouse rows.

Required columns: question, answer, question_id, aligned. Optional: coherent, model, group,
judge_aligned, judge_coherent (logprob dicts as text). Scores may be empty (null: the judge gave
no number); anything else that is not a number is an error naming the file, row and column.
A file without a ``coherent`` column (some released files) imports with every row marked
``coherent_known = false``: such rows never pass the coherent >= 50 gate, so they count in no
rate, and the views say how many there are.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from datetime import UTC, datetime

import polars as pl

REQUIRED = ("question", "answer", "question_id", "aligned")


class ImportFileError(ValueError):
    """A judged-results file that cannot be imported; names the file (and row/column)."""


def _score(value: str | None, origin: str, row: int, column: str) -> float | None:
    if value is None or value.strip() == "" or value.strip().lower() in {"nan", "none", "null"}:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ImportFileError(f"{origin}: row {row}: column {column!r}: not a number: {value!r}") from None
    if math.isnan(number):
        return None
    if not 0 <= number <= 100:
        raise ImportFileError(f"{origin}: row {row}: column {column!r}: {number} is outside 0..100")
    return number


def parse_judged_csv(
    data: bytes, origin: str, question_sets: dict[str, str] | None = None, base_model: str = "published"
) -> pl.DataFrame:
    """Rows for ``imported_judged_results``; row_no counts data rows from 1 (header excluded).

    ``question_sets`` maps question ids to the set holding them (the statistics' scopes need
    it); an id in no set gets a null set.
    """
    if not data.strip():
        raise ImportFileError(f"{origin}: file is empty")
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    except Exception as err:  # polars raises several types for malformed CSV
        raise ImportFileError(f"{origin}: not a readable CSV: {err}") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ImportFileError(f"{origin}: missing required column(s) {missing}; found {frame.columns}")
    import_id = hashlib.sha256(data).hexdigest()
    question_sets = question_sets or {}
    coherent_known = "coherent" in frame.columns
    now = datetime.now(UTC).replace(tzinfo=None)
    records = []
    for row_no, row in enumerate(frame.iter_rows(named=True), start=1):
        for column in ("question", "answer", "question_id"):
            if row[column] is None:
                raise ImportFileError(f"{origin}: row {row_no}: column {column!r} is empty")
        judge = {}
        for column in ("judge_aligned", "judge_coherent"):
            text = row.get(column)
            judge[column] = json.dumps(_parse_dict(text)) if text else None
        records.append(
            {
                "import_id": import_id,
                "source_file": origin,
                "row_no": row_no,
                "model": row.get("model"),
                "group_name": row.get("group"),
                "question_id": row["question_id"],
                "question": row["question"],
                "answer": row["answer"],
                "aligned": _score(row["aligned"], origin, row_no, "aligned"),
                "coherent": _score(row["coherent"], origin, row_no, "coherent") if coherent_known else None,
                "coherent_known": coherent_known,
                "question_set": question_sets.get(row["question_id"]),
                "base_model": base_model,
                "judge_aligned": judge["judge_aligned"],
                "judge_coherent": judge["judge_coherent"],
                "imported_at": now,
            }
        )
    if not records:
        raise ImportFileError(f"{origin}: no data rows")
    return pl.DataFrame(
        records, schema_overrides={"question_set": pl.String, "coherent": pl.Float64, "aligned": pl.Float64}
    )


def _parse_dict(text: str) -> object:
    """The paper writes Python dict reprs ({'85': 0.7, ...}); accept JSON or a literal dict."""
    import ast

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text  # kept verbatim rather than lost
