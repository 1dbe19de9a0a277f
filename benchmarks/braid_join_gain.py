"""Does a trained join beat its lead alone? (issue: braid)

The MetaBraider only braids where a join pays, so this measures, on the braider's selection
prompts (the share of the holdout split it is rewarded on; `--measure-on evaluate`: the rest of
the holdout split, for banks that learned on selection prompts), for every family, its lead (the
family's own specialist) and every other member joining it under every layer-fusion strategy and
four layer choices (every layer, the first, the last, the middle ones; temperature 1, top-k 2):
greedy exact match of the lead alone and of the pair, the pair's gain, and the room there is
(prompts the joiner answers and the lead does not). Each seed measures the braid twice: with the
shared banks trained as `braid_vs_baselines` trains them (`--fusion-steps`, `--fusion-prompts`),
then with the pair banks of the pair families added (`--pair-steps`, `--pair-lr`, `--pair-joiners`;
pairs without a bank of their own still use the shared one). Each pair is also measured under the
output-level strategies (logit average, product of experts: no bank to train), beside the joiner
alone. `--joiners same-family` measures, and gives pair banks to, only joiners whose domain is the
lead's family (the family's specialist made with another seed, in a pool from `evolora braid pool
combine`).

    python benchmarks/braid_join_gain.py [--pool runs/braid-pool] [--seeds 2] [--per-family 48]
        [--fusion-steps 30] [--fusion-prompts learn|select] [--measure-on select|evaluate]
        [--pair-steps 150] [--pair-lr 3e-3] [--pair-joiners 2]
        [--pair-families logic math sequence] [--joiners all|same-family] [--tag NAME]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import add_tag_argument, mean_std, shared_machine_note, tagged, write_result

from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FAMILIES, TrainConfig
from evolora.braid.evaluate import correct
from evolora.braid.fusion import OUTPUT_ONLY
from evolora.braid.pair_train import joiners, train_pair_banks
from evolora.braid.plan import BraidSpec
from evolora.braid.pool import load_pool
from evolora.braid.trainer import role_prompts, train_banks
from evolora.ecology.roles import Role
from evolora.tasks import TaskGrid


def layer_choices(depth: int) -> dict[str, tuple[int, ...]]:
    """The fusion layers measured: every layer, the first, the last, the middle ones."""
    middle = tuple(range(1, depth - 1)) or (0,)
    return {"every": tuple(range(depth)), "first": (0,), "last": (depth - 1,),
            "middle": middle}


def pair_gains(braid: BraidedLLM, prompts: dict[str, list], which: str = "all") -> dict:
    """Per family: the lead's accuracy, and per (strategy, joiner, layers) the pair's accuracy,
    the room (share of prompts the joiner answers that the lead misses) and whether the pair has
    a bank of its own; per (output-level strategy, joiner) the pair's and the joiner's accuracy.
    Joiners: every other member, or (`same-family`) those whose domain is the family."""
    names = braid.pool.names
    banked = {(s, names[lead], names[j]) for s, lead, j in braid.pairs()}
    out = {}
    for family, examples in prompts.items():
        lead = f"{family}-lora"
        alone = correct(braid, BraidSpec((lead,)), examples)
        row = {"lead": float(alone.mean()), "pairs": {}, "outputs": {}}
        for other in (names[m] for m in joiners(braid, names.index(lead), family,
                                                 which == "same-family")):
            solo = correct(braid, BraidSpec((other,)), examples)
            room = float(((solo > 0) & (alone == 0)).float().mean())
            for name in OUTPUT_ONLY:
                row["outputs"][f"{name}|{other}"] = {
                    "acc": float(correct(braid, BraidSpec((lead, other), (), name),
                                         examples).mean()), "joiner": float(solo.mean())}
            for name in braid.banks:
                for tag, layers in layer_choices(braid.pool.depth).items():
                    pair = correct(braid, BraidSpec((lead, other), layers, name, 1.0, 2),
                                   examples)
                    row["pairs"][f"{name}|{other}|{tag}"] = {
                        "acc": float(pair.mean()), "room": room,
                        "banked": (name, lead, other) in banked}
        out[family] = row
    return out


def one_seed(pool, seed: int, args) -> dict:
    torch.manual_seed(seed)
    config = TrainConfig(seed=seed, fusion={
        "steps": args.fusion_steps, "batch": 16, "prompts": args.fusion_prompts,
        "pair_steps": args.pair_steps, "pair_lr": args.pair_lr,
        "pair_joiners": args.pair_joiners, "pair_families": args.pair_families})
    fraction = config.selection_fraction
    prompts = {f: role_prompts(TaskGrid([f], config.difficulties),
                               np.random.default_rng([seed, k, 9]), args.per_family,
                               Role(args.measure_on), fraction)
               for k, f in enumerate(FAMILIES)}
    braid = BraidedLLM(pool)
    start = time.process_time()
    train_banks(braid, config.model_copy(update={"fusion": config.fusion.model_copy(
        update={"pair_families": []})}))
    shared_s = time.process_time() - start
    shared = pair_gains(braid, prompts, args.joiners)
    start = time.process_time()
    made = train_pair_banks(braid, FAMILIES, config.difficulties, config.fusion,
                            config.braider.temperatures, config.braider.top_ks, seed, fraction,
                            same_domain=args.joiners == "same-family")
    return {"shared": shared, "pair": pair_gains(braid, prompts, args.joiners), "pairs_made": made,
            "fusion_cpu_s": shared_s, "pair_cpu_s": time.process_time() - start}


def _stats(runs: list[dict], bank: str, family: str, keys: list[str]) -> dict:
    """Mean gain over `keys`, the best key's gain and the share of keys gaining on average."""
    gain = {k: [r[bank][family]["pairs"][k]["acc"] - r[bank][family]["lead"] for r in runs]
            for k in keys}
    if not keys:
        return {"mean_gain": float("nan"), "best": "", "best_gain": float("nan"),
                "gaining": float("nan"), "gain": gain}
    best = max(keys, key=lambda k: np.mean(gain[k]))
    return {"mean_gain": float(np.mean([np.mean(g) for g in gain.values()])), "best": best,
            "best_gain": float(np.mean(gain[best])),
            "gaining": float(np.mean([np.mean(g) > 0 for g in gain.values()])), "gain": gain}


def summarise(runs: list[dict]) -> tuple[str, dict]:
    """The table (per family and bank stage: mean and best pair gain, over every pair and over
    the pairs that have a bank of their own) and its figures."""
    lines = ["| family | lead alone | banks | mean gain, every pair | mean gain, banked pairs "
             "| banked pairs gaining | best pair gain (strategy, joiner, layers) "
             "| room (best joiner) | best output-level pair gain (strategy, joiner) "
             "| that joiner alone |", "|---|---:|---|---:|---:|---:|---|---:|---|---:|"]
    figures: dict = {}
    for family in FAMILIES:
        banked = [k for k, v in runs[0]["pair"][family]["pairs"].items() if v["banked"]]
        for bank in ("shared", "pair"):
            keys = list(runs[0][bank][family]["pairs"])
            every = _stats(runs, bank, family, keys)
            own = _stats(runs, bank, family, banked)
            room = max(np.mean([r[bank][family]["pairs"][k]["room"] for r in runs])
                       for k in keys)
            lead = [r[bank][family]["lead"] for r in runs]
            outputs = {k: [r[bank][family]["outputs"][k]["acc"] - r[bank][family]["lead"]
                           for r in runs] for k in runs[0][bank][family]["outputs"]}
            top = max(outputs, key=lambda k: np.mean(outputs[k]))
            top_alone = [r[bank][family]["outputs"][top]["joiner"] - r[bank][family]["lead"]
                         for r in runs]
            figures[f"{bank}/{family}"] = {
                "lead": float(np.mean(lead)), "mean_gain": every["mean_gain"],
                "best": every["best"], "best_gain": every["best_gain"],
                "banked_mean_gain": own["mean_gain"], "banked_gaining": own["gaining"],
                "banked_best": own["best"], "banked_best_gain": own["best_gain"],
                "pairs": len(keys), "banked": len(banked), "room": float(room),
                "output_best": top, "output_best_gain": float(np.mean(outputs[top])),
                "output_joiner_alone_gain": float(np.mean(top_alone))}
            best = every["best"].replace("|", ", ")
            lines.append(
                f"| {family} | {mean_std(lead)} | {bank} | {every['mean_gain']:+.3f} | "
                + (f"{own['mean_gain']:+.3f} | {own['gaining']:.2f} of {len(banked)} | "
                   if banked else "- | - | ")
                + f"{mean_std(every['gain'][every['best']], signed=True)} ({best}) | "
                f"{room:.3f} | {mean_std(outputs[top], signed=True)} "
                f"({top.replace('|', ', ')}) | {mean_std(top_alone, signed=True)} |")
    return "\n".join(lines), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("runs/braid-pool"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--per-family", type=int, default=48)
    parser.add_argument("--fusion-steps", type=int, default=30)
    parser.add_argument("--fusion-prompts", choices=("learn", "select"), default="select")
    parser.add_argument("--measure-on", choices=("select", "evaluate"), default="evaluate",
                        help="prompts the pairs are scored on (evaluate: when banks learn on "
                        "select prompts)")
    parser.add_argument("--pair-steps", type=int, default=150, help="Adam steps per pair bank")
    parser.add_argument("--pair-lr", type=float, default=3e-3)
    parser.add_argument("--pair-families", nargs="+", default=["logic", "math", "sequence"],
                        help="families whose specialist gets pair banks")
    parser.add_argument("--pair-joiners", type=int, default=2,
                        help="joiners per pair family (the members with the most room)")
    parser.add_argument("--joiners", choices=("all", "same-family"), default="all",
                        help="every other member joins, or only those of the lead's family "
                        "(measured and given pair banks)")
    add_tag_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pool = load_pool(args.pool)  # the pool as it is: a diagnosis of a given pool
    runs = [one_seed(pool, seed, args) for seed in range(args.seeds)]
    table, figures = summarise(runs)
    text = "\n".join([
        table, "",
        f"{args.seeds} seed(s), {args.per_family} {args.measure_on} prompts per family; lead = the "
        f"family's own specialist; joiners: {args.joiners}; each joiner under every strategy at "
        "four layer choices "
        "(every layer, the first, the last, the middle ones), temperature 1, top-k 2. Shared "
        f"banks trained {args.fusion_steps} steps of 16 rows per strategy on "
        f"{args.fusion_prompts} prompts ({np.mean([r['fusion_cpu_s'] for r in runs]):.0f} s "
        f"of CPU per seed); output-level strategies (no bank) with each joiner; pair banks: "
        f"the {args.pair_joiners} joiners ({args.joiners}) with the most room per "
        f"pair family ({', '.join(args.pair_families)}), {args.pair_steps} steps at lr "
        f"{args.pair_lr} per strategy "
        f"({np.mean([r['pair_cpu_s'] for r in runs]):.0f} s of CPU per seed); pairs made: "
        + "; ".join(sorted({f"{m['family']}: {m['lead']} + {m['joiner']}"
                            for r in runs for m in r["pairs_made"]}))
        + ". Room: share of prompts the best joiner answers and the lead misses. "
        + shared_machine_note()])
    print(text, flush=True)
    name = tagged("braid_join_gain", args.tag)
    write_result(name, {"figures": figures, "runs": runs, "args": vars(args) | {
        "pool": str(args.pool)}}, text)


if __name__ == "__main__":
    main()
