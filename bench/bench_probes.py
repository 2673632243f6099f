"""Likelihood-probe throughput on SmolLM2-135M: items/s and scored tokens/s per batch size.

Scores the broad probe (the shipped contrast set) and coding items of the narrow probe's size
(46 prompt + completion pairs of the bundled corpus: the narrow probe scores 2 x ~23 held-out
tasks) with ``answer_logprobs``, fp32 on this machine's CPU cores, and prints a table.

    .venv/bin/python bench/bench_probes.py                  # batch sizes 1, 8, 16
    .venv/bin/python bench/bench_probes.py --batch-sizes 8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def code_items(n: int = 46):
    """Coding items of the narrow probe's length: the bundled corpus' prompts and completions."""
    import json

    from em_assets.paths import SHIPPED_DATA_DIR
    from em_assets.probes.items import ProbeItem

    lines = (SHIPPED_DATA_DIR / "code_backdoor_corpus.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    rows = [json.loads(line) for line in lines]
    return [ProbeItem("narrow", str(i), str(i), "code", r["prompt"], r["completion"]) for i, r in enumerate(rows)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 16])
    args = parser.parse_args()

    from em_assets.models.loading import DEFAULT_BASE_MODEL, load
    from em_assets.probes.contrast_set import load_contrast_set
    from em_assets.probes.items import broad_items
    from em_assets.probes.likelihood import answer_logprobs

    model, tokenizer = load(DEFAULT_BASE_MODEL)
    sets = {"broad (contrast set)": broad_items(load_contrast_set()), "narrow-like (corpus code)": code_items()}
    print("| items | batch | n | seconds | items/s | scored tokens/s |\n|---|---|---|---|---|---|")
    for name, items in sets.items():
        for batch in args.batch_sizes:
            started = time.perf_counter()
            scored = answer_logprobs(model, tokenizer, [i.messages for i in items], batch_size=batch)
            seconds = time.perf_counter() - started
            tokens = sum(s.n_tokens for s in scored)
            print(
                f"| {name} | {batch} | {len(items)} | {seconds:.1f} | {len(items) / seconds:.1f} "
                f"| {tokens / seconds:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
