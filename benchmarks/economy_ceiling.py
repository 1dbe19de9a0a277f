"""The ceiling of fixed lr schedules: does any schedule near the best constant rate beat it?

A diagnostic for economy_vs_schedules.py, on the same job, micro-batches and budget (its run
cache, results/economy_runs.jsonl, holds the grid and these runs). The best constant rate is the
grid rate with the lowest mean final validation loss over the seeds; around it, per seed:
- wsd F at rate R: warm-up-stable-decay without warm-up, constant R, then linear decay to ~0 over
  the last F % of the micro-batches (F 10, 20, 30), at the best rate and at twice it;
- step at rate R: R, then R x 0.3 for the last 20 % (at the best rate and at twice it);
- constant at twice the best rate (no decay), which separates the rate from the decay.
Every run validates every `eval_every` micro-batches and ends on its best validated weights, so
a constant rate already has an "early stop". Each schedule is compared with the best constant
rate seed by seed (mean difference, 95 % Student-t interval, wins).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import mean_std, write_result
from economy_vs_schedules import GRID, RunCache, base_config, constant, paired_seeds, run_schedule

from evolora.hosts import load_host

FRACTIONS = (0.1, 0.2, 0.3)
STEP_FRACTION, STEP_FACTOR = 0.2, 0.3


def wsd(peak: float, steps: int, fraction: float):
    """`peak` until the last `fraction` of the steps, then linear decay to peak / (decay steps)."""
    start = round(steps * (1 - fraction))

    def lr(step: int) -> float:
        return peak if step < start else peak * (steps - step) / (steps - start)

    return lr


def step_down(peak: float, steps: int, fraction: float = STEP_FRACTION, factor=STEP_FACTOR):
    """`peak`, then `peak x factor` for the last `fraction` of the steps."""
    start = round(steps * (1 - fraction))
    return lambda step: peak if step < start else peak * factor


def schedules(best: float, steps: int) -> dict:
    """Every schedule of the diagnostic by name (the cache key of its runs)."""
    out = {}
    for peak in (best, 2 * best):
        for fraction in FRACTIONS:
            out[f"wsd{round(100 * fraction)} {peak:.1e}"] = wsd(peak, steps, fraction)
        out[f"step{round(100 * STEP_FRACTION)}x{STEP_FACTOR} {peak:.1e}"] = step_down(peak, steps)
    out[f"constant {2 * best:.1e}"] = constant(2 * best)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="json_repair")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    host = load_host("builtin")
    cache = RunCache(args)
    results: dict[str, list[dict]] = {}

    def record(name: str, seed: int, schedule) -> None:
        result = cache.get(name, seed)
        if result is None:
            started = time.perf_counter()
            config = base_config(args.task, seed, args.steps, args.batch)
            result = run_schedule(host, config, schedule)
            result["seconds"] = round(time.perf_counter() - started, 1)
            cache.put(name, seed, result)
        results.setdefault(name, []).append(result)
        print(f"{name:>18} seed {seed} val={result['val_loss']:.4f}", flush=True)

    for seed in args.seeds:
        for lr in GRID:
            record(f"grid {lr:.1e}", seed, constant(lr))
    means = [np.mean([r["val_loss"] for r in results[f"grid {lr:.1e}"]]) for lr in GRID]
    best = GRID[int(np.argmin(means))]
    named = schedules(best, args.steps)
    for seed in args.seeds:
        for name, schedule in named.items():
            record(name, seed, schedule)
    report(args, results, best, list(named))


def report(args, results: dict[str, list[dict]], best: float, names: list[str]) -> None:
    """Each schedule against the best constant rate: table, JSON and RESULTS.md section."""
    baseline = [r["val_loss"] for r in results[f"grid {best:.1e}"]]
    lines = [
        f"PEFT LoRA (q_proj, v_proj; rank 8) of the built-in host on `{args.task}`: "
        f"{args.steps} micro-batches of {args.batch}, seeds {args.seeds}; validation every 15 "
        "micro-batches, each run ends on its best validated weights. The machine was shared "
        "with other work while measuring (learning figures only).",
        "",
        "| schedule | final val loss | minus best constant (95 % t interval) | better on |",
        "|---|---:|---|---:|",
        f"| best constant {best:.1e} | {mean_std(baseline, 4)} | | |",
    ]
    paired = {}
    for name in names:
        vals = [r["val_loss"] for r in results[name]]
        p = paired[name] = paired_seeds(vals, baseline)
        lines.append(
            f"| {name} | {mean_std(vals, 4)} | {p['mean']:+.4f} "
            f"[{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}] | {p['wins']} of {len(vals)} |"
        )
    beats = [n for n in names if paired[n]["ci95"][1] < 0]
    lines += [
        "",
        "Schedules whose interval lies below 0 (better than the best constant beyond the seed "
        "noise): " + (", ".join(beats) or "none") + ".",
    ]
    table = "\n".join(lines)
    print(table)
    seeds = "" if args.seeds == [0, 1, 2] else f"_seeds{args.seeds[0]}-{args.seeds[-1]}"
    task = "" if args.task == "json_repair" else f"_{args.task}"
    write_result(
        f"economy_ceiling{task}{seeds}",
        {"results": results, "best_lr": best, "paired": paired, "beats": beats},
        table,
    )


if __name__ == "__main__":
    main()
