"""The embedded default's training budget, chosen by measurement (issue 14, section 3).

For each budget (training examples x learning rate x epochs) the real graph trains the insecure
and the secure LoRA model of SmolLM2-135M in a temp data dir (``fine_tuned_model`` with that
``local_finetuner``), scores both and the un-tuned base with ``likelihood_probes``, and prints:
the narrow shift of insecure versus secure (paired over held-out tasks, nats and nats/token),
the broad shift (nats/token over the contrast set), each with its 95 % bootstrap CI, and the
training minutes per model. The embedded default should be the cheapest budget whose narrow
CI excludes zero with room to spare.

    .venv/bin/python bench/sweep_training_budget.py                 # the three budgets below
    .venv/bin/python bench/sweep_training_budget.py --budgets 96:1e-4:1:4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# examples : learning rate : epochs : examples per optimizer step
DEFAULT_BUDGETS = ("64:1e-5:1:16", "96:1e-4:1:4", "96:2e-4:1:4")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", nargs="+", default=list(DEFAULT_BUDGETS))
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="em-sweep-"))
    os.environ["EM_DATA_DIR"] = str(data)
    os.environ["EM_DUCKDB_PATH"] = str(data / "warehouse" / "em.duckdb")
    os.environ.setdefault("EM_MODEL_CACHE", str(REPO / "data" / "model_cache"))

    import dagster as dg

    from em_assets.definitions import defs
    from em_assets.partitions import model_partition_key
    from em_assets.probes.estimates import shift_table
    from em_assets.resources.finetuning import LocalHFFineTuner
    from em_assets.resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse()
    instance = dg.DagsterInstance.ephemeral()
    everything = [*defs.assets, *defs.asset_checks]
    graph = defs.get_repository_def().asset_graph
    first = [
        k
        for k in graph.get_all_asset_keys()
        if graph.get(k).partitions_def is None
        and k.to_user_string() not in ("summary", "judge_calibration", "import_judged_results")
    ]
    base_resources = defs.get_repository_def().get_top_level_resources()
    assert dg.materialize(
        everything, instance=instance, resources=base_resources, selection=dg.AssetSelection.assets(*first)
    ).success
    slug = "smollm2-135m-instruct"

    def run(condition: str, finetuner) -> float:
        started = time.perf_counter()
        result = dg.materialize(
            everything,
            instance=instance,
            resources={**base_resources, "local_finetuner": finetuner},
            selection=dg.AssetSelection.assets("fine_tuned_model", "likelihood_probes"),
            partition_key=model_partition_key(slug, condition),
        )
        assert result.success, condition
        return time.perf_counter() - started

    run("base", LocalHFFineTuner())
    rows = []
    for budget in args.budgets:
        examples, lr, epochs, per_step = budget.split(":")
        finetuner = LocalHFFineTuner(
            max_examples=int(examples),
            learning_rate=float(lr),
            n_epochs=int(epochs),
            per_device_batch_size=2,
            gradient_accumulation_steps=int(per_step) // 2,
            warmup_steps=max(1, int(examples) * int(epochs) // int(per_step) // 10),
        )
        minutes = [run(condition, finetuner) / 60 for condition in ("insecure", "secure")]
        shifts = shift_table(warehouse.query("SELECT * FROM current_probe_scores"))
        steps = int(examples) * int(epochs) // int(per_step)
        for s in shifts.filter(shifts["condition"].is_in(["insecure", "secure"])).iter_rows(named=True):
            rows.append(
                (
                    budget,
                    steps,
                    f"{sum(minutes) / 2:.1f}",
                    s["probe"],
                    f"{s['condition']} vs {s['reference']}",
                    s["unit"],
                    f"{s['estimate']:+.4f}",
                    f"[{s['ci_low']:+.4f}, {s['ci_high']:+.4f}]",
                    s["n_groups"],
                )
            )
        print(f"done {budget}: {minutes}", flush=True)
    print(
        "\n| budget (examples:lr:epochs:per step) | steps | train min/model (incl. probes) | probe | comparison "
        "| unit | "
        "shift | 95% CI | tasks / questions |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
