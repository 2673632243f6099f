"""What the whole-graph test's tiny config produced, pinned: speed work must leave the results
of the deterministic maths unchanged (issue 16). The seeded LoRA run, seeded sampling, the local
judge's digit masses and the probes' log-probs are deterministic on one machine with a fixed
thread count, so a change here means the numbers changed, not noise.

The numerics stack (torch, transformers, peft, gguf) is pinned in pyproject.toml for this reason.
Texts compare exactly, numbers within a tolerance far below any effect the job reports (losses
1e-4, scores and log-probs 1e-3). After a change that is *meant* to move the numbers (new data,
new defaults), rewrite the file and say why in the commit:
``EM_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_whole_graph.py``.
"""

import json
import math
import os
from pathlib import Path

GOLDEN = Path(__file__).with_name("tiny_config.json")
TOLERANCE = {"final_loss": 1e-4, "score": 1e-3, "logprob": 1e-3, "misaligned_rate": 1e-9}

QUERIES = {
    "models": "SELECT condition, seed, final_loss, loss_tokens FROM models ORDER BY ALL",
    "answers": "SELECT condition, question_id, sample_idx, answer FROM sampled_responses ORDER BY ALL",
    "scores": (
        "SELECT r.condition, r.question_id, r.sample_idx, j.metric, j.score FROM judge_scores j "
        "JOIN sampled_responses r USING (response_id) ORDER BY ALL"
    ),
    "probes": "SELECT condition, probe, item_id, variant, logprob, n_tokens FROM probe_scores ORDER BY ALL",
    "code": "SELECT condition, prompt_row_id, answer, parses, vulnerable FROM code_vulnerability ORDER BY ALL",
    "rates": (
        "SELECT condition, scope_kind, scope, n_judged, n_misaligned, misaligned_rate FROM summary_rates ORDER BY ALL"
    ),
}


def pinned(warehouse) -> dict[str, list[dict]]:
    return {name: warehouse.query(sql).to_dicts() for name, sql in QUERIES.items()}


def differences(got: dict[str, list[dict]], golden: dict[str, list[dict]]) -> list[str]:
    """Every table, row and field where ``got`` departs from ``golden`` (empty: the same)."""
    found = []
    for table, rows in golden.items():
        ours = got.get(table, [])
        if len(ours) != len(rows):
            found.append(f"{table}: {len(ours)} rows, pinned {len(rows)}")
            continue
        for i, (mine, theirs) in enumerate(zip(ours, rows, strict=True)):
            for field, want in theirs.items():
                have = mine.get(field)
                if isinstance(want, float) and isinstance(have, float):
                    if not math.isclose(have, want, rel_tol=0, abs_tol=TOLERANCE.get(field, 1e-9)):
                        found.append(f"{table} row {i} {field}: {have!r}, pinned {want!r}")
                elif have != want:
                    found.append(f"{table} row {i} {field}: {have!r}, pinned {want!r}")
    return found


def check(warehouse) -> list[str]:
    got = pinned(warehouse)
    if os.environ.get("EM_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    return differences(got, json.loads(GOLDEN.read_text()))
