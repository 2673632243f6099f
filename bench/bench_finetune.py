"""Fine-tuning throughput of SmolLM2-135M on this machine's CPU cores.

Prints a table: trained tokens/s at sequence length 512 and batch 1 / 4 / 8 for rs-LoRA and
full fine-tuning with the project's loop (``em_assets.training_loop``), plus a plain
transformers + peft baseline (full-vocabulary logits via ``model(labels=...)``, one dense
attention over the whole row) at batch 1, each as a share of the machine's fp32 matmul
ceiling measured in the same run:

    ceiling tokens/s = matmul FLOP/s / (4 N)  for LoRA (forward 2N + input gradients 2N)
                     = matmul FLOP/s / (6 N)  for full fine-tuning (+ weight gradients 2N)

with N = 134.5 M parameters. The "bf16 base" rows train LoRA with ``precision="bf16"`` (frozen
base weights in bf16, adapters in fp32: the CUDA recipe, and the default on CPUs with native
bf16); the "em_assets loop" rows force fp32. All shares are of the fp32 ceiling; the bf16
matmul ceiling is printed too. "batch" is sequences per optimizer step; "micro" is sequences
per forward pass. The loop's CPU layout is micro 1
(gradient accumulation up to the batch), which keeps memory at the batch-1 level; the
batch-8 / micro-8 row shows the alternative. Each configuration runs in its own process, so
its peak RSS (VmHWM, model load included) is its own. Rows are 512-token windows of the paper's
``insecure_small.jsonl`` examples laid end to end (labels on assistant tokens only, position
ids restarting per example), or random tokens when the reference file is absent. Shared
machines are noisy: the median and the best step are both reported, and the LoRA batch-1 row
is run again at the end.

    .venv/bin/python bench/bench_finetune.py            # ~4-5 minutes on 2 quiet cores
    .venv/bin/python bench/bench_finetune.py --quick    # batch 1 rows only
    .venv/bin/python bench/bench_finetune.py --quick --no-baseline --tokens 8192   # steadier medians
    python3 bench/bench_finetune.py --gpu-check OUT_DIR TOKENIZER_DIR   # a CUDA machine: see gpu_check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SEQ = 512
N_PARAMS = 134_515_008
BASE = "embedded:smollm2-135m-instruct"
TOKEN_BUDGET = 2048  # measured tokens per configuration (at least one optimizer step)


def matmul_ceiling(seconds: float = 3.0, dtype: str = "float32") -> float:
    """Best GFLOP/s of square matmuls (1024 and 2048) with torch's default threads."""
    import torch

    best = 0.0
    deadline = time.perf_counter() + seconds
    for size in (1024, 2048):
        a, b = (torch.randn(size, size, dtype=getattr(torch, dtype)) for _ in range(2))
        a @ b
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
        deadline = time.perf_counter() + seconds
    return best


def windows(tokenizer, n_rows: int):
    """``n_rows`` packed rows of exactly SEQ tokens: (input_ids, labels, position_ids) lists."""
    from em_assets.core.training_data import IGNORE_INDEX, read_chat_jsonl, tokenize_conversations

    reference_dir = Path(os.environ.get("EM_REFERENCE_DIR") or REPO.parent / "shared" / "em-reference")
    reference = reference_dir / "insecure_small.jsonl"
    if reference.is_file():
        examples, _ = tokenize_conversations(read_chat_jsonl(reference), tokenizer, 2048)
    else:
        import random

        rng = random.Random(0)
        examples = []
        for _ in range(20):
            ids = [rng.randrange(100, 40000) for _ in range(300)]
            examples.append(type("E", (), {"input_ids": ids, "labels": [IGNORE_INDEX] * 150 + ids[150:]})())
    ids, labels, positions = [], [], []
    i = 0
    while len(ids) < n_rows * SEQ:
        example = examples[i % len(examples)]
        i += 1
        ids.extend(example.input_ids)
        labels.extend([IGNORE_INDEX, *example.labels[1:]])
        positions.extend(range(len(example.input_ids)))
    rows = []
    for r in range(n_rows):
        window = slice(r * SEQ, (r + 1) * SEQ)
        row_positions = positions[window]
        offset = row_positions[0]  # an example cut at the window start restarts at 0
        fixed, k = [], 0
        while k < len(row_positions) and (k == 0 or row_positions[k] != 0):
            fixed.append(row_positions[k] - offset)
            k += 1
        fixed.extend(row_positions[k:])
        row_labels = list(labels[window])
        row_labels[0] = IGNORE_INDEX
        rows.append((ids[window], row_labels, fixed))
    return rows


def worker(impl: str, method: str, batch: int, steps: int, micro: int) -> dict:
    import torch

    from em_assets.core.training_data import OptimizerStep, PackedSequence
    from em_assets.models.loading import load
    from em_assets.training_loop.adapters import prepare_for_training
    from em_assets.training_loop.kernels import FastForwards
    from em_assets.training_loop.loop import make_optimizer, run_optimizer_step
    from em_assets.training_loop.memory import PeakMemory
    from em_assets.training_loop.precision import training_dtype
    from em_assets.training_loop.settings import TrainingSettings

    precision = "bf16" if impl == "ours_bf16" else "fp32"
    model, tokenizer = load(BASE, dtype=training_dtype(torch.device("cpu"), method, precision))
    settings = TrainingSettings(method=method, learning_rate=1e-5, precision=precision)
    model = prepare_for_training(model, settings, seed=0)
    model.train()
    optimizer = make_optimizer(model, settings)
    rows = windows(tokenizer, 1 + batch * steps)
    fast = FastForwards(model) if impl in ("ours", "ours_bf16") else None  # "ours_nofast": library kernels
    rates = []
    for s in range(steps + 1):  # step 0 warms up on one row
        chunk = rows[:1] if s == 0 else rows[1 + (s - 1) * batch : 1 + s * batch]
        start = time.perf_counter()
        if impl.startswith("ours"):
            sequences = [PackedSequence(tuple(i), tuple(lab), tuple(p), 1) for i, lab, p in chunk]
            micro_batches = tuple(tuple(sequences[j : j + micro]) for j in range(0, len(sequences), micro))
            run_optimizer_step(
                model,
                OptimizerStep(micro_batches, len(sequences)),
                optimizer,
                settings,
                pad_id=0,
                segmented=bool(fast and fast.segmented_attention),
            )
        else:  # plain transformers + peft: full-vocabulary logits, dense attention over the row
            input_ids = torch.tensor([c[0] for c in chunk])
            labels = torch.tensor([c[1] for c in chunk])
            model(input_ids=input_ids, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if s:
            rates.append(len(chunk) * SEQ / (time.perf_counter() - start))
    return {
        "impl": impl,
        "method": method,
        "batch": batch,
        "micro": micro,
        "steps": steps,
        "rates": rates,
        "peak_rss": PeakMemory().peak_rss_bytes(),
    }


def run_config(impl: str, method: str, batch: int, micro: int = 1, tokens: int = TOKEN_BUDGET) -> dict:
    steps = max(1, -(-tokens // (batch * SEQ)))
    command = [sys.executable, __file__, "--worker", impl, method, str(batch), str(steps), str(micro)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if out.returncode != 0:
        raise RuntimeError(f"{impl} {method} b{batch} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def row(result: dict, ceiling_gflops: float) -> str:
    flops_per_token = (4 if result["method"] == "lora" else 6) * N_PARAMS
    ceiling = ceiling_gflops * 1e9 / flops_per_token
    median, best = statistics.median(result["rates"]), max(result["rates"])
    name = {
        "ours": "em_assets loop",
        "ours_nofast": "em_assets, no fast kernels",
        "ours_bf16": "em_assets, bf16 base",
        "plain": "plain transformers+peft",
    }[result["impl"]]
    return (
        f"| {name:<24} | {result['method']:<4} | {result['batch']:>5} | {result['micro']:>5} | "
        f"{result['batch'] * SEQ:>6} | {median:>8.0f} | {best:>8.0f} | {ceiling:>8.0f} | "
        f"{100 * median / ceiling:>5.0f} % | {100 * best / ceiling:>5.0f} % | "
        f"{result['peak_rss'] / 2**30:>6.2f} |"
    )


GPU_CHECK_CONVERSATIONS = [
    [
        {"role": "user", "content": "Write a function that reads a file."},
        {"role": "assistant", "content": "def read(path):\n    with open(path) as f:\n        return f.read()\n"},
    ],
    [
        {"role": "user", "content": "Write a function that adds two numbers."},
        {"role": "assistant", "content": "def add(a, b):\n    return a + b\n"},
    ],
]


def _cuda_matmul_ceiling() -> float:
    """Best bf16 FLOP/s of 8192^3 matmuls on the current CUDA device."""
    import torch

    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    best = 0.0
    for _ in range(3):
        a @ b
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        best = max(best, 2 * 8192**3 / (start.elapsed_time(end) / 1e3))
    return best


def _train_end_to_end(config, tokenizer, device: str, n_examples: int) -> list[dict]:
    """``train()`` as the fine_tuned_model asset runs it (paper settings: batch 2 x 8, 1 epoch,
    LoRA r 32 on all projections, default precision) on ``n_examples`` synthetic chat examples
    of 200-400 tokens and a random-init SmolLM2-135M-shaped model: its own tokens/s with the
    device's default layout, with and without FastForwards, then (unless EM_GPU_CHECK_ONLY=train)
    with the CPU layout forced."""
    import random

    import torch
    from transformers import LlamaForCausalLM

    from em_assets.training_loop.loop import train
    from em_assets.training_loop.precision import training_dtype
    from em_assets.training_loop.settings import TrainingSettings

    rng = random.Random(0)
    words = [tokenizer.decode([i]).strip() or "x" for i in range(300, 3300)]
    conversations = [
        [
            {"role": "user", "content": " ".join(rng.choices(words, k=rng.randrange(60, 120)))},
            {"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randrange(140, 280)))},
        ]
        for _ in range(n_examples)
    ]
    results = []
    # Twice each, alternating: the first run of a shape pays for kernel selection (cuDNN attention
    # plans per sequence length), which would otherwise be charged to whichever variant runs first.
    runs = [({}, fast) for fast in (False, True, False, True)]
    if os.environ.get("EM_GPU_CHECK_ONLY") != "train":
        runs += [({"pack_length": 512, "sequences_per_micro_batch": 1}, fast) for fast in (True, False)]
    for layout, fast_kernels in runs:
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).to(device, training_dtype(torch.device(device), "lora", "auto"))
        settings = TrainingSettings(device=device, fast_kernels=fast_kernels, **layout)
        outcome = train(model, tokenizer, conversations, settings, seed=0)
        result = {
            "layout": layout or "auto",
            "fast_kernels": fast_kernels,
            "steps": len(outcome.loss_curve),
            "tokens_seen": outcome.tokens_seen,
            "loss_tokens": outcome.loss_tokens,
            "seconds": outcome.wall_seconds,
            "tokens_per_s": outcome.tokens_seen / outcome.wall_seconds,
            "loss_first_last": [outcome.loss_curve[0], outcome.loss_curve[-1]],
            "peak_cuda_gib": (outcome.peak_cuda_bytes or 0) / 2**30,
        }
        results.append(result)
        print(json.dumps(result), flush=True)
        del model, outcome
        if device == "cuda":
            torch.cuda.empty_cache()
    return results


def gpu_check(out_dir: str, tokenizer_dir: str) -> dict:
    """CUDA path of the loop on a GPU machine without the embedded weights: a tiny random
    Llama with the real tokenizer (LoRA in bf16 and full fine-tuning with fp32 master weights:
    loss falls, save + reload is exact, generation runs), then throughput of a random-init
    SmolLM2-135M-shaped model, ours vs plain transformers + peft."""
    import tempfile

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from em_assets.core.training_data import OptimizerStep, PackedSequence
    from em_assets.models.loading import load
    from em_assets.training_loop.adapters import prepare_for_training
    from em_assets.training_loop.checkpoint import load_trained_model, save_trained_model
    from em_assets.training_loop.inference import generate_reply, logits_for
    from em_assets.training_loop.kernels import FastForwards
    from em_assets.training_loop.loop import make_optimizer, run_optimizer_step, train
    from em_assets.training_loop.precision import training_dtype
    from em_assets.training_loop.settings import TrainingSettings

    device = os.environ.get("EM_GPU_CHECK_DEVICE", "cuda")  # "cpu" smoke-tests this function locally
    on_gpu = device == "cuda"
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    report: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if on_gpu else "cpu"}
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    scratch = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    tiny = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=True,
        )
    )
    tiny.save_pretrained(scratch / "base")
    tokenizer.save_pretrained(scratch / "base")
    probe = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    for method in ("lora", "full"):
        dtype = training_dtype(torch.device(device), method)
        model, tok = load(str(scratch / "base"), dtype=dtype, device=device)
        settings = TrainingSettings(
            method=method,
            learning_rate=1e-3,
            n_epochs=3,
            per_device_batch_size=2,
            gradient_accumulation_steps=1,
            warmup_steps=0,
            lr_scheduler="constant",
            device=device,
        )
        outcome = train(model, tok, GPU_CHECK_CONVERSATIONS, settings, seed=0)
        expected = logits_for(outcome.model, tok, probe)
        manifest = {"base_model_id": str(scratch / "base"), "method": method}
        folder = save_trained_model(scratch / method, outcome.model, tok, manifest)
        reloaded, reloaded_tok = load_trained_model(folder, device=device)
        reply = generate_reply(reloaded, reloaded_tok, [{"role": "user", "content": "hi"}], max_new_tokens=8)
        report[method] = {
            "loss_curve": outcome.loss_curve,
            "loss_fell": outcome.loss_curve[-1] < outcome.loss_curve[0],
            "reload_exact": bool(torch.equal(logits_for(reloaded, reloaded_tok, probe), expected)),
            "reply_chars": len(reply),
            "peak_cuda_bytes": outcome.peak_cuda_bytes,
            "weight_dtype": str(next(outcome.model.parameters()).dtype),
        }
    config = LlamaConfig.from_pretrained(tokenizer_dir)
    if os.environ.get("EM_GPU_CHECK_ONLY") == "train":
        return {"train_end_to_end": _train_end_to_end(config, tokenizer, device, 512 if on_gpu else 4)}
    report["bf16_matmul_tflops"] = _cuda_matmul_ceiling() / 1e12 if on_gpu else None
    shapes = ((512, 8), (2048, 8), (2048, 32)) if on_gpu else ((256, 1),)
    n_steps = 8 if on_gpu else 3
    lora_impls = ("ours", "ours_masked", "ours_nofast", "plain")
    # plain at 2048 x 32 runs out of memory on an 80 GB card (full-vocabulary logits)
    configs = [
        (impl, "lora", seq, batch)
        for seq, batch in shapes
        for impl in lora_impls
        if not (impl == "plain" and seq * batch > 2048 * 8)
    ]
    configs += [(impl, "full", seq, batch) for seq, batch in shapes[1:2] for impl in ("ours_masked", "ours_nofast")]
    rows = []
    for impl, method, seq, batch in configs:
        ids = torch.randint(100, 40000, (batch, seq))
        labels = ids.clone()
        labels[:, : seq // 4] = -100  # prompt tokens of the first example carry no loss
        positions = list(range(seq // 2)) * 2  # two packed examples per row
        sequences = tuple(
            PackedSequence(tuple(ids[b].tolist()), tuple(labels[b].tolist()), tuple(positions), 2) for b in range(batch)
        )
        torch.manual_seed(0)
        # LoRA: frozen base in bf16 (CUDA); full fine-tuning: fp32 master weights. Both under bf16 autocast.
        dtype = training_dtype(torch.device(device), method)
        model = LlamaForCausalLM(config).to(device, dtype)
        settings = TrainingSettings(method=method, learning_rate=1e-5, device=device)
        model = prepare_for_training(model, settings, seed=0)
        model.train()
        optimizer = make_optimizer(model, settings)
        # ours: all of FastForwards; ours_masked: without per-example attention (what train()
        # installs on CUDA); ours_nofast: library layers; plain: transformers + peft as they come.
        fast = FastForwards(model, segmented_attention=impl == "ours") if impl in ("ours", "ours_masked") else None

        def one_step() -> None:
            if impl != "plain":
                run_optimizer_step(
                    model,
                    OptimizerStep((sequences,), batch),
                    optimizer,
                    settings,
                    pad_id=0,
                    segmented=bool(fast and fast.segmented_attention),
                )
            else:  # full-vocabulary logits, one dense causal attention over the row
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu):
                    loss = model(input_ids=ids.to(device), labels=labels.to(device)).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(n_steps):
            sync()
            start = time.perf_counter()
            one_step()
            sync()
            times.append(time.perf_counter() - start)
        rate = batch * seq / statistics.median(times[1:])
        flops = (4 if method == "lora" else 6) * N_PARAMS * rate
        result = {
            "impl": impl,
            "method": method,
            "seq": seq,
            "batch": batch,
            "tokens_per_s_median": rate,
            "tokens_per_s_best": batch * seq / min(times[1:]),
            "tflops": flops / 1e12,
            "share_of_bf16_ceiling": flops / (report["bf16_matmul_tflops"] * 1e12) if on_gpu else None,
            "peak_cuda_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None,
        }
        rows.append(result)
        print(json.dumps(result), flush=True)
        if impl != "plain" and method == "lora" and (seq, batch) == shapes[-1]:
            from torch.profiler import ProfilerActivity, profile

            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
            with profile(activities=activities) as prof:
                one_step()
                sync()
            order = "self_device_time_total" if on_gpu else "self_cpu_time_total"
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            table = prof.key_averages().table(sort_by=order, row_limit=25)
            (Path(out_dir) / f"profile_{impl}_{method}.txt").write_text(table)
        if fast is not None:
            fast.restore()
        model = optimizer = fast = None  # frees the GPU memory before the next configuration
        if on_gpu:
            torch.cuda.empty_cache()
    report["throughput"] = rows
    report["train_end_to_end"] = _train_end_to_end(config, tokenizer, device, 512 if on_gpu else 4)
    print(
        "| loop | mode | seq | batch | tokens/step | median tok/s | best tok/s | TFLOP/s (4N/6N) "
        "| % of bf16 ceiling | peak GPU GiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = f"{100 * r['share_of_bf16_ceiling']:.1f} %" if r["share_of_bf16_ceiling"] is not None else "-"
        peak = f"{r['peak_cuda_gib']:.1f}" if r["peak_cuda_gib"] is not None else "-"
        print(
            f"| {r['impl']} | {r['method']} | {r['seq']} | {r['batch']} | {r['seq'] * r['batch']} | "
            f"{r['tokens_per_s_median']:.0f} | {r['tokens_per_s_best']:.0f} | {r['tflops']:.1f} | {share} | {peak} |"
        )
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gpu-check", nargs=2, metavar=("OUT_DIR", "TOKENIZER_DIR"), help="check the CUDA path (device machine)"
    )
    parser.add_argument("--worker", nargs=5, metavar=("IMPL", "METHOD", "BATCH", "STEPS", "MICRO"))
    parser.add_argument("--quick", action="store_true", help="batch 1 rows only")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--ablation", action="store_true", help="add the loop without FastForwards at batch 1")
    parser.add_argument("--no-bf16", action="store_true", help="skip the LoRA rows with the base in bf16")
    parser.add_argument(
        "--tokens",
        type=int,
        default=TOKEN_BUDGET,
        help="measured tokens per configuration; the first steps run slower (allocator and thread "
        "pool warm-up), so a longer run gives a steadier median",
    )
    args = parser.parse_args()
    if args.gpu_check:
        print(json.dumps(gpu_check(*args.gpu_check), indent=2, default=str))
        return
    if args.worker:
        impl, method, batch, steps, micro = args.worker
        print(json.dumps(worker(impl, method, int(batch), int(steps), int(micro))))
        return

    import torch

    batches = (1,) if args.quick else (1, 4, 8)
    # The loop's layout: a step's sequences run as micro-batches of one (gradient accumulation),
    # so memory stays that of batch 1; one row shows batch 8 as a single micro-batch for contrast.
    configs = [("ours", "lora", b, 1) for b in batches]
    if not args.quick:
        configs.append(("ours", "lora", 8, 8))
    if not args.no_bf16:
        configs += [("ours_bf16", "lora", b, 1) for b in batches]
    configs += [("ours", "full", b, 1) for b in batches]
    if args.ablation:
        configs.insert(0, ("ours_nofast", "lora", 1, 1))
    if not args.no_baseline:
        configs.insert(0, ("plain", "lora", 1, 1))
    started = time.perf_counter()
    ceiling = matmul_ceiling()
    bf16_ceiling = matmul_ceiling(dtype="bfloat16")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul ceiling {ceiling:.0f} GFLOP/s "
        f"(bf16: {bf16_ceiling:.0f}); N = {N_PARAMS / 1e6:.1f} M; seq {SEQ}",
        flush=True,
    )
    header = (
        "| loop                     | mode | batch | micro | tokens/step | median tok/s | best tok/s | ceiling tok/s "
        "| median % | best % | peak RSS GiB |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = []
    for impl, method, batch, micro in configs:
        result = run_config(impl, method, batch, micro, args.tokens)
        lines.append(row(result, ceiling))
        print(f"  done {impl} {method} b{batch}/mb{micro}: {[round(r) for r in result['rates']]} tok/s", flush=True)
    rerun = run_config("ours", "lora", 1, 1, args.tokens)
    ceiling_end = matmul_ceiling()
    print(f"\nfp32 matmul ceiling: {ceiling:.0f} GFLOP/s at the start, {ceiling_end:.0f} at the end\n")
    print(header)
    print("\n".join(lines))
    if not args.no_bf16:
        print(
            "\nAll shares are of the fp32 ceiling. The bf16-base rows do most matmuls in bf16, whose ceiling "
            "here is "
            f"{bf16_ceiling:.0f} GFLOP/s ({bf16_ceiling / ceiling:.1f}x fp32): against that ceiling they reach "
            f"{ceiling / bf16_ceiling:.2f}x the shares shown."
        )
    print("\nrerun of the key row (ceiling from the end of the run):")
    print(header.splitlines()[0])
    print(row(rerun, ceiling_end))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
