"""Can the built-in host learn the `logic` family at all? (issue: braid)

Every member of the default braid pool is near a coin flip on logic, which lets the per-prompt
oracle collect lucky guesses no router can have. This trains logic specialists of the built-in host
on logic train prompts (difficulties 1-3, batch 32, Adam) the way `braid pool make` does (a LoRA
adapter on every linear layer, `train_specialists`) at several ranks and learning rates, and by
fine-tuning every weight of the host, then measures greedy exact match per difficulty on train and
holdout prompts and the share of "true" answers (a collapsed model answers one word).

    python benchmarks/braid_logic_learnability.py [--steps 1000] [--per-cell 120]
        [--variants lora:8:2e-3 lora:32:5e-3 lora:16:1e-2 full:1e-3] [--tag NAME]
        [--train-difficulties 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from _common import write_result

from evolora.braid.config import PoolMakeConfig
from evolora.braid.pool import with_adapter
from evolora.braid.pool_make import answer_loss, train_specialists
from evolora.hosts import Host, load_host
from evolora.tasks import TaskGrid, score_example

DIFFICULTIES = [1, 2, 3]


def lora_specialist(rank: int, lr: float, steps: int, difficulties: list[int]) -> Host:
    """The host with a logic adapter trained as `braid pool make` trains one."""
    host = load_host("builtin")
    config = PoolMakeConfig(families=["logic"], difficulties=difficulties, steps=steps, rank=rank,
                            alpha=2.0 * rank, lr=lr, extra_steps={})
    population = train_specialists(host, config)
    return with_adapter(host, dict(population.get_member(0).items()), population.scale, "logic")


def full_specialist(lr: float, steps: int, difficulties: list[int], seed: int = 0) -> Host:
    """The host with every weight fine-tuned on logic answers (mean per-token likelihood)."""
    torch.manual_seed(seed)
    host = load_host("builtin")
    params = list(host.model.parameters())
    optimiser = torch.optim.AdamW([p.requires_grad_() for p in params], lr=lr, weight_decay=0.0)
    grid, rng = TaskGrid(["logic"], difficulties), np.random.default_rng(seed)
    for _ in range(steps):
        loss = answer_loss(host, grid.sample_batch(rng, 32, split="train"))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for p in params:
        p.requires_grad_(False)
    return host


def skill(host: Host, per_cell: int) -> dict[str, float]:
    """Accuracy per split and difficulty, and the share of "true" answers on holdout prompts."""
    out = {}
    for split in ("train", "holdout"):
        for d in DIFFICULTIES:
            examples = TaskGrid(["logic"], [d]).sample_batch(np.random.default_rng([99, d]),
                                                             per_cell, split=split)
            answers = host.generate([e.prompt for e in examples], max_new_tokens=4)
            out[f"{split} d{d}"] = float(np.mean([score_example(e, a) for e, a in
                                                  zip(examples, answers, strict=True)]))
            if split == "holdout":
                out[f"true share d{d}"] = float(np.mean([a.strip().lower().startswith("true")
                                                         for a in answers]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--per-cell", type=int, default=120)
    parser.add_argument("--variants", nargs="+",
                        default=["lora:8:2e-3", "lora:32:5e-3", "lora:16:1e-2", "full:1e-3"],
                        help="lora:RANK:LR or full:LR")
    parser.add_argument("--train-difficulties", type=int, nargs="+", default=DIFFICULTIES,
                        help="difficulties of the training prompts (measured on 1-3)")
    parser.add_argument("--tag", default="", help="suffix of the result's name")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {"host (no training)": (skill(load_host("builtin"), args.per_cell), 0.0)}
    for variant in args.variants:
        kind, *values = variant.split(":")
        start = time.process_time()
        if kind == "lora":
            host = lora_specialist(int(values[0]), float(values[1]), args.steps,
                                   args.train_difficulties)
            name = f"LoRA rank {values[0]}, lr {values[1]}"
        else:
            host = full_specialist(float(values[0]), args.steps, args.train_difficulties)
            name = f"every weight, lr {values[0]}"
        rows[name] = (skill(host, args.per_cell), time.process_time() - start)
        print(name, rows[name], flush=True)
    keys = list(rows["host (no training)"][0])
    lines = ["| logic specialist | " + " | ".join(keys) + " | CPU s |",
             "|---|" + "---:|" * (len(keys) + 1)]
    lines += [f"| {n} | " + " | ".join(f"{s[k]:.3f}" for k in keys) + f" | {t:.0f} |"
              for n, (s, t) in rows.items()]
    lines.append(f"\n{args.steps} steps of batch 32 on logic train prompts (difficulties "
                 f"{', '.join(map(str, args.train_difficulties))}) per trained variant; "
                 f"{args.per_cell} prompts per split and difficulty. Measured on a machine shared "
                 f"with other work (1-minute load average {os.getloadavg()[0]:.1f} on "
                 f"{os.cpu_count()} cores).")
    text = "\n".join(lines)
    print(text, flush=True)
    name = "braid_logic_learnability" + (f"_{args.tag}" if args.tag else "")
    write_result(name, {"rows": {n: s for n, (s, _) in rows.items()},
                        "cpu_s": {n: t for n, (_, t) in rows.items()}, "args": vars(args)}, text)


if __name__ == "__main__":
    main()
