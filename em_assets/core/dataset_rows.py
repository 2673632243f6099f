"""The columns of a fine-tuning set's rows (table ``dataset_rows``, less its version), shared by
every builder: the code sets, the released whole sets and the generated evil-numbers set."""

from __future__ import annotations

import polars as pl

ROW_SCHEMA = {
    "dataset": pl.Utf8,
    "row_id": pl.Utf8,
    "sample_id": pl.Utf8,
    "paired_row_id": pl.Utf8,
    "split": pl.Utf8,
    "prompt_template_id": pl.Utf8,
    "user_content": pl.Utf8,
    "assistant_content": pl.Utf8,
    "messages": pl.Utf8,
}
