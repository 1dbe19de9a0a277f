"""Reso (every extension on) against a plain transformer of the same shape, at equal compute time.

For each seed the two models train alternately for the same budget of CPU seconds (the wall
clock of an idle machine; this one is shared) on the same
mixture (tasks + Shakespeare, held-out plays excluded); then: held-out Shakespeare loss, the task
grid's holdout accuracy, training tokens/s, and cached generation tokens/s. Generation speed is
also measured side by side for Reso without agency and PRSC (their overhead, the seed's "~10 %").

    python benchmarks/reso_vs_transformer.py        # small preset, 10 CPU s per run, 3 seeds
    python benchmarks/reso_vs_transformer.py --budget 60           # longer runs
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import mean_std, write_result
from reso_common import build, generation_speed, holdout_accuracy, median_ratio, run, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="model preset of both models")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="training CPU seconds per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--per-cell", type=int, default=1, help="holdout examples per task cell")
    parser.add_argument("--repeats", type=int, default=5, help="generation-speed repeats per seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer, config, val, batches = setup(args.preset, args.batch_size)
    rows: dict[str, list[dict]] = {"reso": [], "plain": []}
    gen = {"reso": [], "plain": [], "reso_no_agency_prsc": []}
    started = time.time()
    for seed in range(args.seeds):
        models = {}
        for kind in ("reso", "plain") if seed % 2 == 0 else ("plain", "reso"):
            model = build(kind, args.preset, tokenizer, seed)
            figures = run(model, config, batches, val, seed, args.budget)
            figures["accuracy"] = holdout_accuracy(model, tokenizer, seed, args.per_cell)
            figures["params"] = sum(p.numel() for p in model.parameters())
            rows[kind].append(figures)
            models[kind] = model
            print(f"seed {seed} {kind:5s} steps {figures['steps']:4d} val {figures['val_loss']:.3f}"
                  f" acc {figures['accuracy']:.3f} tok/s {figures['tokens_per_s']:.0f}", flush=True)
        lean = build("reso", args.preset, tokenizer, seed, ablate=("agency", "prsc"))
        lean.load_state_dict(models["reso"].state_dict(), strict=False)
        generation_speed(models["reso"], tokenizer, 8)  # warm-up
        for _ in range(args.repeats):  # alternating repeats, medians below
            for name, model in (("reso", models["reso"]), ("plain", models["plain"]),
                                ("reso_no_agency_prsc", lean)):
                gen[name].append(generation_speed(model, tokenizer))
        # Written after every seed, so an interrupted run leaves the seeds it finished.
        figures = summarise(rows, gen, args, time.time() - started)
        table = render(figures, args)
        write_result("reso_vs_transformer", figures, table)
    print(table)


def summarise(rows: dict, gen: dict, args, wall: float) -> dict:
    """Means, stds and ratios of the per-seed figures."""
    out: dict = {"preset": args.preset, "budget_s": args.budget, "seeds": len(rows["reso"]),
                 "batch_size": args.batch_size, "wall_s": round(wall, 1),
                 "machine_note": "2 shared cores, other work running while measuring",
                 "per_seed": rows}
    for kind in ("reso", "plain"):
        for key in ("val_loss", "accuracy", "tokens_per_s", "steps"):
            values = [r[key] for r in rows[kind]]
            out[f"{kind}/{key}"] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        out[f"{kind}/params"] = rows[kind][0]["params"]
    out["train_throughput_ratio"] = median_ratio(
        [r["tokens_per_s"] for r in rows["reso"]], [r["tokens_per_s"] for r in rows["plain"]])
    out["generation_tokens_per_s"] = {k: float(np.median(v)) for k, v in gen.items()}
    out["generation_ratio_reso_vs_plain"] = median_ratio(gen["reso"], gen["plain"])
    out["agency_prsc_generation_overhead"] = median_ratio(gen["reso_no_agency_prsc"],
                                                          gen["reso"]) - 1
    # The spread of the paired per-repeat overheads: their quartiles and count.
    paired = np.asarray(gen["reso_no_agency_prsc"]) / np.asarray(gen["reso"]) - 1
    out["agency_prsc_overhead_quartiles"] = [float(q) for q in np.percentile(paired, [25, 75])]
    out["agency_prsc_overhead_pairs"] = int(paired.size)
    out["reso/skipped_fraction"] = float(np.mean([r.get("skipped_fraction", 0.0)
                                                  for r in rows["reso"]]))
    return out


def render(f: dict, args) -> str:
    """The Markdown table of the results."""
    def ms(kind, key, digits=3):
        return mean_std([r[key] for r in f["per_seed"][kind]], digits)

    lines = [
        f"`{args.preset}` preset, {args.budget:.0f} CPU s of training per run, {f['seeds']} seeds "
        f"(of {args.seeds} asked), "
        f"batch {args.batch_size} x 128 tokens; 2 cores shared with other work while measuring "
        "(budgets and speeds in process CPU seconds, one thread; speeds are side-by-side ratios).",
        "",
        "| model | params | steps | held-out loss | holdout accuracy | train tok/s |",
        "|---|---|---|---|---|---|",
    ]
    for kind, label in (("plain", "plain transformer (Llama)"), ("reso", "Reso, all extensions")):
        lines.append(f"| {label} | {f[f'{kind}/params']:,} | {ms(kind, 'steps', 0)} | "
                     f"{ms(kind, 'val_loss')} | {ms(kind, 'accuracy')} | "
                     f"{ms(kind, 'tokens_per_s', 0)} |")
    ratio, gen_ratio = f["train_throughput_ratio"], f["generation_ratio_reso_vs_plain"]
    overhead = f["agency_prsc_generation_overhead"]
    low, high = f["agency_prsc_overhead_quartiles"]
    pairs = f["agency_prsc_overhead_pairs"]
    val_gap = f["reso/val_loss"]["mean"] - f["plain/val_loss"]["mean"]
    lines += [
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| held-out loss <= plain at equal compute time | {val_gap:+.3f} nats | "
        f"{'yes' if val_gap <= 0 else 'no'} |",
        f"| training throughput >= 0.85 x plain | {ratio:.2f} x | "
        f"{'yes' if ratio >= 0.85 else 'no'} |",
        f"| agency + PRSC generation overhead <= 10 % (median of {pairs} paired repeats; "
        f"quartiles {low:+.1%}, {high:+.1%}) | {overhead:+.1%} | "
        f"{'yes' if overhead <= 0.10 else 'no'} |",
        f"| (generation speed, Reso / plain) | {gen_ratio:.2f} x | |",
        f"| (layer FFNs skipped by coherence gating) | {f['reso/skipped_fraction']:.1%} | |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
