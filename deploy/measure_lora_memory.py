"""Peak GPU memory and speed of this project's rs-LoRA training step, to size the GPU of the
training task definition without downloading any weights.

Models are randomly initialised in bf16 directly on the GPU with the shapes of Qwen2.5-7B,
Qwen2.5-32B and Llama-3-70B (memory does not depend on the weights' values). Each
configuration runs one warm-up and two timed optimizer steps of ``em_assets.training_loop``
(rs-LoRA r 32 on all 7 projections, AdamW, loss chunking, the same FastForwards the trainer
installs) on one packed 2,048-token sequence (4 examples of 512 tokens, loss on the second
half of each), in its own process so peaks do not mix. Shapes that cannot fit one GPU are
run with fewer layers and extrapolated linearly in the layer count (printed as such).

    PYTHONPATH=. python deploy/measure_lora_memory.py   # from the repo root; table on stdout, JSON on stderr

Needs torch with CUDA, transformers and peft; no network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

SEQ = 2048
SHAPES = {
    # model_type, hidden, intermediate, layers, heads, kv heads, vocab
    "Qwen2.5-7B": ("qwen2", 3584, 18944, 28, 28, 4, 152064),
    "Qwen2.5-32B": ("qwen2", 5120, 27648, 64, 40, 8, 152064),
    "Llama-3-70B": ("llama", 8192, 28672, 80, 64, 8, 128256),
}
# (shape, layers or None = all, gradient checkpointing)
RUNS = [
    ("Qwen2.5-7B", None, False),
    ("Qwen2.5-7B", None, True),
    ("Qwen2.5-7B", 14, True),  # checks the extrapolation against the full 7B row
    ("Qwen2.5-32B", None, True),
    ("Qwen2.5-32B", None, False),
    ("Llama-3-70B", 20, True),
    ("Llama-3-70B", 40, True),
]


def worker(shape: str, layers: int | None, checkpointing: bool) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from em_assets.core.training_data import IGNORE_INDEX, OptimizerStep, PackedSequence
    from em_assets.training_loop.adapters import prepare_for_training
    from em_assets.training_loop.kernels import FastForwards
    from em_assets.training_loop.loop import make_optimizer, run_optimizer_step
    from em_assets.training_loop.settings import TrainingSettings

    model_type, hidden, inter, n_layers, heads, kv, vocab = SHAPES[shape]
    config = AutoConfig.for_model(
        model_type,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers or n_layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        vocab_size=vocab,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
    )
    torch.cuda.reset_peak_memory_stats()
    with torch.device("cuda"):
        try:
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
        except TypeError:  # transformers < 4.56 names it torch_dtype
            model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    weights = torch.cuda.memory_allocated()
    settings = TrainingSettings(device="cuda", gradient_checkpointing=checkpointing, max_length=SEQ, pack_length=SEQ)
    model = prepare_for_training(model, settings, seed=0)
    model.train()
    optimizer = make_optimizer(model, settings)
    fast = FastForwards(model) if settings.fast_kernels else None
    generator = torch.Generator().manual_seed(0)
    ids, labels, positions = [], [], []
    for _ in range(4):
        example = torch.randint(0, vocab, (SEQ // 4,), generator=generator).tolist()
        ids += example
        labels += [IGNORE_INDEX] * (SEQ // 8) + example[SEQ // 8 :]
        positions += list(range(SEQ // 4))
    step = OptimizerStep(((PackedSequence(tuple(ids), tuple(labels), tuple(positions), 4),),), 4)
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        run_optimizer_step(
            model, step, optimizer, settings, pad_id=0, segmented=bool(fast and fast.segmented_attention)
        )
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "shape": shape,
        "layers": layers or n_layers,
        "all_layers": n_layers,
        "checkpointing": checkpointing,
        "weights_gib": weights / 2**30,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        "trainable_m": trainable / 1e6,
        "tokens_per_s": SEQ / min(times[1:]),
        "gpu": torch.cuda.get_device_name(),
    }


def run(shape: str, layers: int | None, checkpointing: bool) -> dict:
    argv = [sys.executable, __file__, "--worker", shape, str(layers or 0), str(int(checkpointing))]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        out_of_memory = "OutOfMemoryError" in done.stderr or "out of memory" in done.stderr
        return {
            "shape": shape,
            "layers": layers,
            "checkpointing": checkpointing,
            "error": "out of memory" if out_of_memory else done.stderr[-800:],
        }
    return json.loads(lines[-1])


def main() -> None:
    results = []
    for shape, layers, checkpointing in RUNS:
        result = run(shape, layers, checkpointing)
        print(json.dumps(result), file=sys.stderr, flush=True)
        results.append(result)
    print("| shape | layers | checkpointing | weights GiB | peak GiB | reserved GiB | LoRA params M | tokens/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['shape']} | {r['layers'] or 'all'} | {r['checkpointing']} | | {r['error'][:60]} | | | |")
            continue
        print(
            f"| {r['shape']} | {r['layers']} | {r['checkpointing']} | {r['weights_gib']:.1f} | {r['peak_gib']:.1f} "
            f"| {r['reserved_gib']:.1f} | {r['trainable_m']:.0f} | {r['tokens_per_s']:.0f} |"
        )
    # Linear in the layer count: two partial runs of a shape give the whole model's peak.
    by_shape: dict[str, list[dict]] = {}
    for r in results:
        if "error" not in r and r["checkpointing"] and r["layers"] < r["all_layers"]:
            by_shape.setdefault(r["shape"], []).append(r)
    for shape, rows in by_shape.items():
        if len(rows) >= 2:
            a, b = rows[0], rows[-1]
            per_layer = (b["peak_gib"] - a["peak_gib"]) / (b["layers"] - a["layers"])
            total = a["peak_gib"] + per_layer * (a["all_layers"] - a["layers"])
            print(
                f"\n{shape}: {per_layer:.2f} GiB per layer -> {total:.0f} GiB peak extrapolated to "
                f"{a['all_layers']} layers (checkpointing on)"
            )
    gpu = next((r["gpu"] for r in results if "gpu" in r), "?")
    print(f"\nGPU: {gpu}; one packed {SEQ}-token sequence per step")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], int(sys.argv[3]) or None, bool(int(sys.argv[4])))))
    else:
        main()
