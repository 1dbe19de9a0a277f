"""How many training steps do the braid pool's specialists need? (issue: braid)

Trains the default pool's specialists with the pool's own trainer (`train_specialists`: the
default `PoolMakeConfig` but `steps=N` and no extra steps) and, at each of `--steps`, scores every
family's specialist by greedy exact match (the teacher-forced check `braid_vs_baselines` uses) on
distinct evaluation prompts of its family (the holdout share the braid benchmark evaluates on,
`evaluation_prompts`, difficulties 1-3) and on distinct train prompts (what it may have memorised).
One run gives the whole curve: after S steps the adapters are exactly those of a make with
`steps=S` and no extra steps. The untrained host is scored as step 0.

    python benchmarks/braid_specialist_steps.py [--steps 250 500 750 1000 1500 2000]
        [--per-cell 40] [--seeds 0] [--tag NAME]
        [--keep DIR]   # checkpoints and scored steps per seed; a killed run continues there
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import numpy as np
import torch
from _common import (
    add_keep_argument,
    add_tag_argument,
    kept_seed,
    mean_std,
    shared_machine_note,
    tagged,
    write_result,
)

from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FAMILIES, PoolMakeConfig, TrainConfig
from evolora.braid.evaluate import correct
from evolora.braid.plan import BraidSpec
from evolora.braid.pool import ModelPool, profile_of, with_adapter
from evolora.braid.pool_make import train_specialists
from evolora.ecology.roles import Role, distinct_examples
from evolora.hosts import Host, load_host
from evolora.lora import LoRAPopulation
from evolora.tasks import Example, TaskGrid
from evolora.telemetry.atomic import atomic_write_text


def prompt_sets(per_cell: int, seed: int) -> dict[str, dict[str, list[Example]]]:
    """Per split ("holdout": evaluation prompts; "train") and family, up to `per_cell` distinct
    prompts per difficulty."""
    from evolora.braid.trainer import evaluation_prompts

    config = TrainConfig()
    grid = TaskGrid(FAMILIES, config.difficulties)
    holdout = evaluation_prompts(grid, per_cell, seed, config.selection_fraction)
    rng = np.random.default_rng([seed, 11])
    train = [ex for cell in grid.cells for ex in distinct_examples(
        grid, rng, cell, Role.learn, config.selection_fraction, per_cell)]
    return {split: {f: [e for e in examples if e.family == f] for f in FAMILIES}
            for split, examples in (("holdout", holdout), ("train", train))}


def score(members: dict[str, Host], prompts: dict) -> dict[str, dict[str, float]]:
    """Accuracy of each family's member on its family's prompts, per split, with a per-difficulty
    breakdown (`<split> d<difficulty>`)."""
    names = list(members)
    pool = ModelPool(list(members.values()), [profile_of(h, n, "adapter", "builtin")
                                               for n, h in members.items()])
    braid = BraidedLLM(pool)
    out = {}
    for family, name in zip(FAMILIES, names, strict=True):
        row = {}
        for split, by_family in prompts.items():
            examples = by_family[family]
            hits = correct(braid, BraidSpec((name,)), examples)
            row[split] = float(hits.mean())
            for d in sorted({e.difficulty for e in examples}):
                row[f"{split} d{d}"] = float(hits[[e.difficulty == d for e in examples]].mean())
        out[family] = row
    return out


def one_seed(seed: int, args) -> dict:
    """The curve of one seed: {step: {family: accuracies}}, scored steps kept in `args.keep`."""
    folder = args.keep / f"seed{seed}" if args.keep else None
    done_file = folder / "steps.json" if folder else None
    curve = json.loads(done_file.read_text()) if done_file and done_file.is_file() else {}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    prompts = prompt_sets(args.per_cell, seed)
    clean = load_host("builtin")  # the specialists' base, never wrapped by the trainer
    if "0" not in curve:
        curve["0"] = score({f"host-{f}": clean for f in FAMILIES}, prompts)
    config = PoolMakeConfig(seed=seed, steps=max(args.steps), extra_steps={})
    wanted, started = set(args.steps), time.process_time()

    def snapshot(steps_done: int, population: LoRAPopulation) -> None:
        if steps_done not in wanted or str(steps_done) in curve:
            return
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            members = {f"{f}-lora": with_adapter(clean, population.get_member(k),
                                                  population.scale, f"{f}-lora")
                       for k, f in enumerate(FAMILIES)}
            curve[str(steps_done)] = score(members, prompts)
        curve.setdefault("cpu_s", {})[str(steps_done)] = time.process_time() - started
        print(f"seed {seed} step {steps_done}: " + ", ".join(
            f"{f} {v['holdout']:.3f} (train {v['train']:.3f})"
            for f, v in curve[str(steps_done)].items()), flush=True)
        if done_file is not None:
            atomic_write_text(done_file, json.dumps(curve))

    if not all(str(s) in curve for s in args.steps):
        train_specialists(load_host("builtin"), config, checkpoints=folder / "checkpoints"
                          if folder else None, on_snapshot=snapshot)
    return {"curve": curve, "prompts": {split: {f: len(v) for f, v in by.items()}
                                        for split, by in prompts.items()}}


def table(runs: list[dict], steps: list[int]) -> list[str]:
    """Markdown: per step, each family's holdout (train) accuracy and their mean."""
    lines = ["| steps | " + " | ".join(FAMILIES) + " | mean over families |",
             "|---:|" + "---:|" * (len(FAMILIES) + 1)]
    for step in [0, *steps]:
        cells = []
        for family in FAMILIES:
            held = [r["curve"][str(step)][family]["holdout"] for r in runs]
            train = [r["curve"][str(step)][family]["train"] for r in runs]
            cells.append(f"{_fmt(held)} ({_fmt(train)})")
        means = [np.mean([r["curve"][str(step)][f]["holdout"] for f in FAMILIES]) for r in runs]
        lines.append(f"| {step if step else '0 (host)'} | " + " | ".join(cells)
                     + f" | {_fmt(means)} |")
    return lines


def _fmt(values: list[float]) -> str:
    """The value of one seed, or mean ± std over several."""
    return mean_std(values) if len(values) > 1 else f"{values[0]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 750, 1000, 1500, 2000])
    parser.add_argument("--per-cell", type=int, default=40,
                        help="distinct prompts per family, difficulty and split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_tag_argument(parser)
    add_keep_argument(parser)
    args = parser.parse_args()
    args.steps = sorted(set(args.steps))
    torch.set_num_threads(1)
    runs = []
    for seed in args.seeds:
        runs.append(kept_seed(args.keep, seed, partial(one_seed, seed, args)))
    lines = table(runs, args.steps)
    counts = runs[0]["prompts"]
    cpu = [r["curve"]["cpu_s"][str(max(args.steps))] / max(args.steps) for r in runs
           if "cpu_s" in r["curve"] and str(max(args.steps)) in r["curve"]["cpu_s"]]
    lines.append(
        f"\nGreedy exact match of each family's own specialist on evaluation prompts (in brackets: "
        f"train prompts), difficulties 1-3, {min(counts['holdout'].values())}-"
        f"{max(counts['holdout'].values())} distinct evaluation prompts per family; "
        f"`PoolMakeConfig` defaults (rank 8, lr 2e-3, batch 32 per family) with steps = "
        f"{max(args.steps)} and no extra steps, scored along the way; seeds "
        f"{', '.join(map(str, args.seeds))} (± is the std over seeds). "
        + (f"CPU per training step of all five families, scoring included: "
           f"{np.mean(cpu):.2f} s. " if cpu else "")
        + shared_machine_note())
    text = "\n".join(lines)
    print(text, flush=True)
    name = tagged("braid_specialist_steps", args.tag)
    write_result(name, {"runs": runs, "args": vars(args) | {"keep": str(args.keep)}}, text)


if __name__ == "__main__":
    main()
