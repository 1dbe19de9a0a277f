"""Can the built-in host learn a task family (`logic` by default), or one of logic's problem
kinds? (issue: braid)

Every member of the default braid pool is near a coin flip on logic, and the math specialist's
curve levels off near 0.27, which leaves the per-prompt oracle far ahead of any router. This trains
specialists of the built-in host on the family's train prompts (batch 32, Adam) the way `braid
pool make` does (a LoRA adapter on every linear layer, `train_specialists`) at several ranks and
learning rates, and by fine-tuning every weight of the host, then measures greedy exact match per
difficulty (and, for logic, problem kind) on train and holdout prompts; for logic also the share of
"true" answers on holdout prompts (a collapsed model answers one word). A `member:POOL:NAME`
variant scores a member of a pool folder as it is, on the same prompts (e.g. the pool's own LoRA
specialist). `--kinds` (logic only) trains and scores on prompts of those kinds only: boolean
expressions (every difficulty) or syllogisms (difficulties 3-5), which a router tells apart.

    python benchmarks/braid_family_learnability.py [--family logic] [--steps 1000]
        [--per-cell 120] [--variants lora:8:2e-3 lora:32:5e-3 lora:16:1e-2 full:1e-3
        member:runs/braid-pool:math-lora] [--tag NAME]
        [--train-difficulties 1 2 3] [--eval-difficulties D ...]
        [--kinds boolean syllogism] [--seeds 0] [--save-adapters DIR]
        [--snapshot-every STEPS] [--save-models DIR]

`--snapshot-every` scores every-weight variants along their training as well (a row per
snapshot); `--save-models` saves each every-weight specialist as a local HF model folder, which
`evolora braid pool add` takes as a pool member. The result is named
`braid_<family>_learnability[_TAG]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import add_tag_argument, shared_machine_note, tagged, write_result
from safetensors.torch import save_file

from evolora.braid.config import FAMILIES, PoolMakeConfig
from evolora.braid.member_train import train_full_member
from evolora.braid.pool import load_pool, with_adapter
from evolora.braid.pool_add import save_model_folder
from evolora.braid.pool_make import train_specialists
from evolora.hosts import Host, load_host
from evolora.tasks import TaskGrid, score_example

# the difficulties at which the logic family writes each problem kind (tasks/families/logic.py)
KIND_DIFFICULTIES = {"boolean": [1, 2, 3, 4, 5], "syllogism": [3, 4, 5]}
# new tokens per scored answer: logic's one word, else what `pool make` gives when measuring skill
ANSWER_TOKENS = {"logic": 4}


class FamilyGrid:
    """Prompts of one task family at the given difficulties; for logic, of the named problem
    kinds only, at the difficulties that have them (`kinds` is None for other families)."""

    def __init__(self, family: str, difficulties: list[int], kinds: list[str] | None) -> None:
        usable = difficulties if kinds is None else [
            d for d in difficulties if any(d in KIND_DIFFICULTIES[k] for k in kinds)]
        if not usable:
            raise SystemExit(f"no difficulty of {difficulties} has logic prompts of kinds {kinds}")
        self.family, self.kinds = family, None if kinds is None else set(kinds)
        self.grid = TaskGrid([family], usable)

    def sample_batch(self, rng: np.random.Generator, n: int, split: str | None = None) -> list:
        """`n` examples (of the kinds, each from a uniformly drawn difficulty that has one)."""
        if self.kinds is None:
            return self.grid.sample_batch(rng, n, split=split)
        out = []
        while len(out) < n:
            example = self.grid.sample_batch(rng, 1, split=split)[0]
            if example.meta["kind"] in self.kinds:
                out.append(example)
        return out

    def cells(self, difficulties: list[int]) -> list[tuple[int, str | None]]:
        """The (difficulty, kind) cells scored at `difficulties` (kind None: no kinds)."""
        if self.kinds is None:
            return [(d, None) for d in difficulties]
        return [(d, k) for d in difficulties for k in KIND_DIFFICULTIES
                if k in self.kinds and d in KIND_DIFFICULTIES[k]]


def lora_specialist(rank: int, lr: float, steps: int, grid: FamilyGrid, seed: int,
                    save: Path | None = None) -> Host:
    """The host with an adapter for the grid's family trained as `braid pool make` trains one
    (its A and B tensors saved to `save`, a safetensors file, when given)."""
    host = load_host("builtin")
    config = PoolMakeConfig(seed=seed, families=[grid.family],
                            difficulties=grid.grid.difficulties, steps=steps, rank=rank,
                            alpha=2.0 * rank, lr=lr, extra_steps={})
    population = train_specialists(host, config, grids=[grid])
    member = dict(population.get_member(0).items())
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        save_file({f"{layer}.{ab}": t.contiguous() for layer, pair in member.items()
                   for ab, t in zip("AB", pair, strict=True)}, str(save))
    return with_adapter(host, member, population.scale, grid.family)


def pool_member(pool: str, name: str) -> Host:
    """Member `name` of the pool folder `pool`, as the pool loads it."""
    loaded = load_pool(pool)
    return loaded.hosts[loaded.index(name)]


def full_specialist(lr: float, steps: int, grid: FamilyGrid, seed: int, every: int = 0,
                    on_snapshot: Callable[[int, Host], None] | None = None) -> Host:
    """The built-in host with every weight fine-tuned on the grid's answers, as `evolora braid
    pool train-member` trains one; `on_snapshot(step, host)` runs after every `every` steps
    before the last (0: never)."""
    return train_full_member("builtin", grid.family, grid.grid.difficulties, steps, lr, seed,
                             sampler=grid, every=every, on_snapshot=on_snapshot)


def skill(host: Host, per_cell: int, difficulties: list[int], grid: FamilyGrid) -> dict:
    """Accuracy per split, difficulty and (logic) kind, the mean over holdout cells when there
    are several, and for logic the share of "true" answers on holdout."""
    out = {}
    tokens = ANSWER_TOKENS.get(grid.family, PoolMakeConfig().max_new_tokens)
    for split in ("train", "holdout"):
        for d, kind in grid.cells(difficulties):
            if kind is None:
                rng = np.random.default_rng([99, d])
                examples = FamilyGrid(grid.family, [d], None).sample_batch(rng, per_cell, split)
            else:
                rng = np.random.default_rng([99, d, list(KIND_DIFFICULTIES).index(kind)])
                examples = FamilyGrid("logic", [d], [kind]).sample_batch(rng, per_cell, split)
            answers = host.generate([e.prompt for e in examples], max_new_tokens=tokens)
            cell = f"d{d}" if kind is None else f"d{d} {kind}"
            out[f"{split} {cell}"] = float(np.mean([score_example(e, a) for e, a in
                                                    zip(examples, answers, strict=True)]))
            if split == "holdout" and kind is not None:
                out[f"true share {cell}"] = float(np.mean([
                    a.strip().lower().startswith("true") for a in answers]))
    holdout = [v for k, v in out.items() if k.startswith("holdout ")]
    if grid.kinds is None and len(holdout) > 1:
        out["holdout mean"] = float(np.mean(holdout))
    return out


def table(family: str, rows: dict[str, list[dict]], cpu: dict[str, float]) -> list[str]:
    """Markdown rows: mean (± std over seeds when there are several) per cell, CPU s per seed
    (with its snapshots' scoring; "-" on a snapshot's row or a pool member's)."""
    keys = list(next(iter(rows.values()))[0])
    lines = [f"| {family} specialist | " + " | ".join(keys) + " | CPU s per seed |",
             "|---|" + "---:|" * (len(keys) + 1)]
    for name, runs in rows.items():
        cells = []
        for k in keys:
            values = np.array([r[k] for r in runs])
            cells.append(f"{values.mean():.3f}" + (f" ± {values.std():.3f}" if len(runs) > 1
                                                   else ""))
        spent = f"{cpu[name]:.0f}" if name in cpu else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spent} |")
    return lines


def variant_name(variant: str) -> str:
    """The table row of a variant (`lora:RANK:LR`, `full:LR` or `member:POOL:NAME`)."""
    kind, *values = variant.split(":")
    if kind == "lora" and len(values) == 2:
        return f"LoRA rank {values[0]}, lr {values[1]}"
    if kind == "full" and len(values) == 1:
        return f"every weight, lr {values[0]}"
    if kind == "member" and len(values) == 2:
        return f"pool member {values[1]} of {values[0]}"
    raise SystemExit(f"--variants: {variant!r} is not lora:RANK:LR, full:LR or member:POOL:NAME")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=FAMILIES, default="logic",
                        help="task family the specialists learn")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--per-cell", type=int, default=120)
    parser.add_argument("--variants", nargs="+",
                        default=["lora:8:2e-3", "lora:32:5e-3", "lora:16:1e-2", "full:1e-3"],
                        help="lora:RANK:LR, full:LR or member:POOL:NAME (scored as it is)")
    parser.add_argument("--train-difficulties", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--eval-difficulties", type=int, nargs="+", default=None,
                        help="difficulties scored (default: the training ones)")
    parser.add_argument("--kinds", nargs="+", choices=list(KIND_DIFFICULTIES), default=None,
                        help="logic only: problem kinds trained and scored (default: both)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_tag_argument(parser)
    parser.add_argument("--save-adapters", type=Path, default=None,
                        help="folder to save each LoRA specialist's adapter in (safetensors)")
    parser.add_argument("--snapshot-every", type=int, default=0,
                        help="also score every-weight variants after each this many steps")
    parser.add_argument("--save-models", type=Path, default=None,
                        help="folder to save each every-weight specialist in (HF model folders)")
    args = parser.parse_args()
    if args.kinds is not None and args.family != "logic":
        parser.error(f"--kinds names logic's problem kinds; --family {args.family} has none")
    kinds = (args.kinds or list(KIND_DIFFICULTIES)) if args.family == "logic" else None
    names = [variant_name(v) for v in args.variants]
    torch.set_num_threads(1)
    grid = FamilyGrid(args.family, args.train_difficulties, kinds)
    measured = args.eval_difficulties or args.train_difficulties
    host_row = "host (no training)"
    rows = {host_row: [skill(load_host("builtin"), args.per_cell, measured, grid)]}
    cpu = {host_row: 0.0}
    for variant, name in zip(args.variants, names, strict=True):
        kind, *values = variant.split(":")
        if kind == "member":  # trained elsewhere: scored once, whatever the seeds
            rows[name] = [skill(pool_member(*values), args.per_cell, measured, grid)]
            print(name, rows[name][-1], flush=True)
            continue
        rows[name], start = [], time.process_time()
        for seed in args.seeds:
            save = (args.save_adapters / f"{variant.replace(':', '_')}-seed{seed}.safetensors"
                    if args.save_adapters else None)
            if kind == "lora":
                host = lora_specialist(int(values[0]), float(values[1]), args.steps, grid, seed,
                                       save)
            else:
                def snapshot(step: int, host: Host, name: str = name, seed: int = seed) -> None:
                    scored = skill(host, args.per_cell, measured, grid)
                    rows.setdefault(f"{name} ({step} steps)", []).append(scored)
                    print(name, f"seed {seed} step {step}", scored, flush=True)

                host = full_specialist(float(values[0]), args.steps, grid, seed,
                                       args.snapshot_every, snapshot)
                if args.save_models:
                    save_model_folder(host, args.save_models
                                      / f"{variant.replace(':', '_')}-seed{seed}")
            rows[name].append(skill(host, args.per_cell, measured, grid))
            print(name, f"seed {seed}", rows[name][-1], flush=True)
        cpu[name] = (time.process_time() - start) / len(args.seeds)
        rows[name] = rows.pop(name)  # after its snapshots, in step order
    lines = table(args.family, rows, cpu)
    of_kinds = f" of kinds {', '.join(kinds)}" if kinds is not None else ""
    per = "split, difficulty and kind" if kinds is not None else "split and difficulty"
    lines.append(f"\n{args.steps} steps of batch 32 on {args.family} train prompts{of_kinds} "
                 f"(difficulties {', '.join(map(str, grid.grid.difficulties))}) per trained "
                 f"variant and seed (seeds {', '.join(map(str, args.seeds))}; ± is the std over "
                 f"seeds); {args.per_cell} prompts per {per}. {shared_machine_note()}")
    text = "\n".join(lines)
    print(text, flush=True)
    name = tagged(f"braid_{args.family}_learnability", args.tag)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    write_result(name, {"rows": rows, "cpu_s": cpu, "args": settings}, text)


if __name__ == "__main__":
    main()
