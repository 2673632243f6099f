"""Frames as Markdown tables, for the Dagster metadata every stage shows."""

from __future__ import annotations

import polars as pl


def markdown_table(frame: pl.DataFrame, float_digits: int = 3) -> str:
    def cell(value: object) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return header + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in frame.iter_rows())
