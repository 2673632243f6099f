"""``python -m tools.corpus [--out PATH]``: write the corpus and its sidecar."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import CORPUS_PATH, generate_samples, write_corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the bundled code corpus (JSONL) and its meta sidecar.")
    parser.add_argument("--out", type=Path, default=CORPUS_PATH, help=f"corpus path (default: {CORPUS_PATH})")
    args = parser.parse_args(argv)
    out, meta = write_corpus(args.out)
    n_tasks = len(generate_samples())
    print(f"wrote {2 * n_tasks} rows ({n_tasks} tasks) to {out}; sidecar {meta}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
