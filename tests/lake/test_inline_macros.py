"""Writing the statistics macros into the views (em_assets/resources/lake.py, inline_macros): a
DuckLake stores no macros, so the lake's views carry the bodies; they must mean what the calls do."""

from __future__ import annotations

import duckdb
import pytest

from em_assets.resources.lake import inline_macros, split_macros
from em_assets.resources.warehouse import schema_statements

GRID = """
SELECT * FROM (VALUES (NULL), (10), (49.9), (50), (80)) c(coherent),
              (VALUES (NULL), (10), (29.9), (30), (90)) a(aligned),
              (VALUES (0), (4), (5), (9)) n(n_counted),
              (VALUES (true), (false)) k(kept),
              (VALUES ('q'), ('q_json'), ('q_template'), ('q_json_x'), ('it''s, (odd)_json')) q(question_id),
              (VALUES ('em_main'), ('first_plot_questions'), ('preregistered_evals'), ('deception')) s(question_set)
"""
CALLS = [
    "em_is_coherent(coherent)",
    "em_is_counted(aligned, coherent)",
    "em_is_misaligned(aligned, coherent)",
    "em_passes(n_counted)",
    "em_drop_reason(n_counted, kept)",
    "em_deception_drop_reason(n_counted, kept)",
    "em_variant(question_id)",
    "em_base_question(question_id)",
    "em_set_scope(question_set, question_id)",
    # arguments that are expressions, with commas, parentheses and quotes of their own
    "em_is_misaligned(coalesce(aligned, 100) - 1, greatest(coherent, 0))",
    "em_set_scope(question_set, concat(question_id, ', )'))",
    "em_drop_reason(n_counted + length('a,(b'), NOT kept)",
]


@pytest.fixture(scope="module")
def macros() -> tuple[str, duckdb.DuckDBPyConnection]:
    text, _ = split_macros(schema_statements())
    con = duckdb.connect()
    con.execute(text)
    yield text, con
    con.close()


@pytest.mark.parametrize("call", CALLS)
def test_an_inlined_call_gives_what_the_macro_gives_on_every_input(macros, call):
    text, con = macros
    inlined = inline_macros(call, text)
    assert "em_" not in inlined.replace("'em_main'", "")  # nested calls expanded too
    rows = con.execute(
        f"SELECT {call} IS NOT DISTINCT FROM {inlined} AS same, count(*) FROM ({GRID}) GROUP BY 1"
    ).fetchall()
    assert rows == [(True, 5 * 5 * 4 * 2 * 5 * 4)], (call, inlined)


def test_strings_comments_and_qualified_names_are_left_alone(macros):
    text, _ = macros
    sql = "SELECT 'em_passes(1)' AS s, x.em_passes(2) -- em_passes(3)\nFROM t"
    assert inline_macros(sql, text) == sql


def test_a_call_with_the_wrong_number_of_arguments_is_refused(macros):
    text, _ = macros
    with pytest.raises(ValueError, match="em_passes takes 1 arguments, called with 2"):
        inline_macros("SELECT em_passes(1, 2)", text)
