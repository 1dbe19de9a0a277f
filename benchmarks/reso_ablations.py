"""Ablations: the full Reso model against itself with one extension off, 3 seeds, equal compute.

Each variant trains for the same budget of CPU seconds on the same mixture; the table gives its
held-out Shakespeare loss and training tokens/s against the full model (and the plain transformer),
plus
the share of layer FFNs coherence gating skipped and the loss that costs (full vs gating off).

    python benchmarks/reso_ablations.py             # tiny preset, 4 CPU s per run, 3 seeds
    python benchmarks/reso_ablations.py --preset small --budget 60
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import mean_std, write_result
from reso_common import build, run, setup

from evolora.reso.sections import FORWARD_EXTENSIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--budget", type=float, default=4.0,
                        help="training CPU seconds per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer, config, val, batches = setup(args.preset, args.batch_size)
    variants = ["full", *[f"-{name}" for name in FORWARD_EXTENSIONS], "plain"]
    results: dict[str, list[dict]] = {v: [] for v in variants}
    started = time.time()
    for seed in range(args.seeds):
        order = variants if seed % 2 == 0 else variants[::-1]  # alternate to spread drift
        for variant in order:
            kind = "plain" if variant == "plain" else "reso"
            ablate = (variant[1:],) if variant.startswith("-") else ()
            model = build(kind, args.preset, tokenizer, seed, ablate)
            figures = run(model, config, batches, val, seed, args.budget)
            results[variant].append(figures)
            print(f"seed {seed} {variant:22s} steps {figures['steps']:4d} "
                  f"val {figures['val_loss']:.3f} tok/s {figures['tokens_per_s']:.0f}", flush=True)
        # Written after every seed, so an interrupted run leaves the seeds it finished.
        figures = {"preset": args.preset, "budget_s": args.budget, "seeds": seed + 1,
                   "wall_s": round(time.time() - started, 1),
                   "machine_note": "2 shared cores, other work running while measuring",
                   "per_seed": results}
        table = render(results, args)
        write_result("reso_ablations", figures, table)
    print(table)


def render(results: dict[str, list[dict]], args) -> str:
    """Markdown: one row per variant, deltas against the full model paired by seed."""
    full = results["full"]
    lines = [
        f"`{args.preset}` preset, {args.budget:.0f} CPU s of training per run, {len(full)} seeds "
        f"(of {args.seeds} asked), "
        f"batch {args.batch_size} x 128 tokens; 2 cores shared with other work while measuring "
        "(budgets and speeds in process CPU seconds, one thread). "
        "Δ = variant − full model, paired by seed (negative Δ loss: the model is better without "
        "that extension at this budget).",
        "",
        "| variant | steps | held-out loss | Δ loss vs full | tok/s vs full |",
        "|---|---|---|---|---|",
    ]
    for variant, rows in results.items():
        loss = [r["val_loss"] for r in rows]
        delta = [r["val_loss"] - f["val_loss"] for r, f in zip(rows, full, strict=True)]
        speed = [r["tokens_per_s"] / f["tokens_per_s"] for r, f in zip(rows, full, strict=True)]
        name = {"full": "full Reso", "plain": "plain transformer"}.get(variant,
                                                                       f"without {variant[1:]}")
        lines.append(f"| {name} | {mean_std([r['steps'] for r in rows], 0)} | {mean_std(loss)} | "
                     f"{mean_std(delta, signed=True)} | {np.median(speed):.2f} x |")
    skipped = [r.get("skipped_fraction", 0.0) for r in full]
    cost = [f["val_loss"] - g["val_loss"]
            for f, g in zip(full, results["-coherence_gating"], strict=True)]
    lines += ["", f"Coherence gating skipped {mean_std(skipped)} of the layer FFNs on held-out "
              f"text; its loss cost (full − without gating) is {mean_std(cost, signed=True)} "
              "nats at equal compute time."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
