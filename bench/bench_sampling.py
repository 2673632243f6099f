"""Local sampling throughput: the main job's answers from SmolLM2-135M at several batch sizes.

The embedded run samples one answer per paraphrase of the main questions (temperature 1, at most
160 new tokens) through ``LocalHFBackend``; this bench asks the same of the base model at each
batch size and prints tokens/s. Decoding a 135M model on CPU is bound by reading the weights
once per step, so a wider batch buys tokens almost for free until compute catches up.

    .venv/bin/python bench/bench_sampling.py                 # batch 8, 16, 24, 32
    .venv/bin/python bench/bench_sampling.py --batch-sizes 8 32 --answers 48
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BASE = "embedded:smollm2-135m-instruct"


def main_question_prompts(n: int) -> list[str]:
    from em_assets.core.questions import load_question_file

    questions = load_question_file(REPO / "em_assets" / "data" / "questions" / "em_main.yaml")
    paraphrases = [p for q in questions if not q.id.endswith(("_json", "_template")) for p in q.paraphrases]
    # Repeated paraphrases get a distinct suffix, so no two requests are the same one.
    return [paraphrases[i % len(paraphrases)] + " " * (i // len(paraphrases)) for i in range(n)]


def run(batch_size: int, prompts: list[str], max_tokens: int) -> tuple[float, int]:
    from em_assets.llm.backends.local_hf import LocalHFBackend
    from em_assets.llm.request import ChatRequest

    backend = LocalHFBackend(batch_size=batch_size)
    backend.model_and_tokenizer(BASE)  # load outside the timing
    requests = [ChatRequest.user(BASE, p, temperature=1.0, top_p=1.0, max_tokens=max_tokens, seed=0) for p in prompts]
    started = time.perf_counter()
    completions = backend.complete_batch(requests)
    return time.perf_counter() - started, sum(c.tokens_out for c in completions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 24, 32])
    parser.add_argument("--answers", type=int, default=24, help="answers per batch size (the embedded run: 24)")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    prompts = main_question_prompts(args.answers)
    print(f"{len(prompts)} answers, at most {args.max_tokens} new tokens each, {BASE}\n")
    print("| batch | seconds | new tokens | tokens/s |\n|---|---|---|---|")
    for batch_size in args.batch_sizes:
        seconds, tokens = run(batch_size, prompts, args.max_tokens)
        print(f"| {batch_size} | {seconds:.1f} | {tokens} | {tokens / seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
