"""Does a trained join beat its lead alone? (issue: braid)

The MetaBraider only braids where a join pays, so this measures, on the braider's selection
prompts (the share of the holdout split it is rewarded on; `--measure-on evaluate`: the rest of
the holdout split, for banks that learned on selection prompts), for every family, its lead (the
family's own specialist) and every other member joining it under every layer-fusion strategy
(every layer fused, temperature 1, top-k 2): greedy exact match of the lead alone and of the pair,
the pair's gain, and the room there is (prompts the joiner answers and the lead does not). The
banks are trained as `braid_vs_baselines` trains them (`--fusion-steps`, `--fusion-prompts`), and
an untrained bank is measured beside them.

    python benchmarks/braid_join_gain.py [--pool runs/braid-pool] [--seeds 2] [--per-family 48]
        [--fusion-steps 15] [--fusion-prompts learn|select] [--measure-on select|evaluate]
        [--tag NAME]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from _common import mean_std, write_result

from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FAMILIES, TrainConfig
from evolora.braid.evaluate import correct
from evolora.braid.plan import BraidSpec
from evolora.braid.pool import load_pool
from evolora.braid.trainer import role_prompts, train_banks
from evolora.ecology.roles import Role
from evolora.tasks import TaskGrid


def pair_gains(braid: BraidedLLM, prompts: dict[str, list]) -> dict:
    """Per family: the lead's accuracy, and per (strategy, joiner) the pair's accuracy and the
    room (share of prompts the joiner answers that the lead misses)."""
    names, layers = braid.pool.names, tuple(range(braid.pool.depth))
    out = {}
    for family, examples in prompts.items():
        lead = f"{family}-lora"
        alone = correct(braid, BraidSpec((lead,)), examples)
        row = {"lead": float(alone.mean()), "pairs": {}}
        for other in (n for n in names if n != lead):
            solo = correct(braid, BraidSpec((other,)), examples)
            room = float(((solo > 0) & (alone == 0)).float().mean())
            for name in braid.banks:
                pair = correct(braid, BraidSpec((lead, other), layers, name, 1.0, 2), examples)
                row["pairs"][f"{name}|{other}"] = {"acc": float(pair.mean()), "room": room}
        out[family] = row
    return out


def one_seed(pool, seed: int, args) -> dict:
    torch.manual_seed(seed)
    config = TrainConfig(seed=seed, fusion={"steps": args.fusion_steps, "batch": 16,
                                            "prompts": args.fusion_prompts})
    fraction = config.selection_fraction
    prompts = {f: role_prompts(TaskGrid([f], config.difficulties),
                               np.random.default_rng([seed, k, 9]), args.per_family,
                               Role(args.measure_on), fraction)
               for k, f in enumerate(FAMILIES)}
    fresh = pair_gains(BraidedLLM(pool), prompts)
    braid = BraidedLLM(pool)
    start = time.process_time()
    train_banks(braid, config)
    return {"untrained": fresh, "trained": pair_gains(braid, prompts),
            "fusion_cpu_s": time.process_time() - start}


def summarise(runs: list[dict]) -> tuple[str, dict]:
    """The table (per family: best pair gain per strategy, mean gain) and its figures."""
    lines = ["| family | lead alone | bank | best pair gain (strategy, joiner) | mean pair gain "
             "| pairs beating the lead | room (best joiner) |", "|---|---:|---|---|---:|---:|---:|"]
    figures: dict = {}
    for bank in ("untrained", "trained"):
        for family in FAMILIES:
            lead = [r[bank][family]["lead"] for r in runs]
            keys = list(runs[0][bank][family]["pairs"])
            gain = {k: [r[bank][family]["pairs"][k]["acc"] - r[bank][family]["lead"]
                        for r in runs] for k in keys}
            room = max(np.mean([r[bank][family]["pairs"][k]["room"] for r in runs])
                       for k in keys)
            best = max(keys, key=lambda k: np.mean(gain[k]))
            beating = sum(np.mean(gain[k]) > 0 for k in keys)
            mean_gain = float(np.mean([np.mean(g) for g in gain.values()]))
            figures[f"{bank}/{family}"] = {"lead": float(np.mean(lead)), "best": best,
                                           "best_gain": float(np.mean(gain[best])),
                                           "mean_gain": mean_gain, "beating": int(beating),
                                           "pairs": len(keys), "room": float(room)}
            lines.append(f"| {family} | {mean_std(lead)} | {bank} | "
                         f"{mean_std(gain[best], signed=True)} ({best.replace('|', ', ')}) | "
                         f"{mean_gain:+.3f} | {beating}/{len(keys)} | {room:.3f} |")
    return "\n".join(lines), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("runs/braid-pool"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--per-family", type=int, default=48)
    parser.add_argument("--fusion-steps", type=int, default=15)
    parser.add_argument("--fusion-prompts", choices=("learn", "select"), default="learn")
    parser.add_argument("--measure-on", choices=("select", "evaluate"), default="select",
                        help="prompts the pairs are scored on (evaluate: when banks learn on "
                        "select prompts)")
    parser.add_argument("--tag", default="", help="suffix of the result's name")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pool = load_pool(args.pool)  # the pool as it is: a diagnosis of a given pool
    runs = [one_seed(pool, seed, args) for seed in range(args.seeds)]
    table, figures = summarise(runs)
    text = "\n".join([
        table, "",
        f"{args.seeds} seed(s), {args.per_family} {args.measure_on} prompts per family; lead = the "
        f"family's own specialist; every layer fused, temperature 1, top-k 2; banks trained "
        f"{args.fusion_steps} steps of 16 rows per strategy on {args.fusion_prompts} prompts "
        f"({np.mean([r['fusion_cpu_s'] for r in runs]):.0f} s of CPU per seed). Room: share of "
        "prompts the best joiner answers and the lead misses. Measured on a machine shared with "
        f"other work (1-minute load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)."])
    print(text, flush=True)
    name = "braid_join_gain" + (f"_{args.tag}" if args.tag else "")
    write_result(name, {"figures": figures, "runs": runs, "args": vars(args) | {
        "pool": str(args.pool)}}, text)


if __name__ == "__main__":
    main()
