"""Is each specialist of the default braid pool best on its own family? (issue: braid)

Greedy exact match of every pool member on `--per-family` prompts of each family (difficulties
1-3), on the braider's selection prompts (the share of the holdout split it is rewarded on) and on
evaluation prompts (the rest), and on train prompts, which the built-in host recalls. Per family:
each member, the oracle (best member per prompt); overall: the best single member, each family sent
to its own specialist, and the oracle. It needs no training, so it shows what routing alone could
gain before the MetaBraider is measured.

    python benchmarks/braid_pool_skill.py [--pool runs/braid-pool] [--per-family 80]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from _common import shared_machine_note, write_result

from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FAMILIES, PoolMakeConfig, TrainConfig
from evolora.braid.evaluate import correct
from evolora.braid.plan import BraidSpec
from evolora.braid.pool_make import ensure_pool
from evolora.braid.trainer import role_prompts
from evolora.ecology.roles import Role
from evolora.tasks import TaskGrid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("runs/braid-pool"))
    parser.add_argument("--per-family", type=int, default=80)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pool = ensure_pool(args.pool, PoolMakeConfig())
    braid = BraidedLLM(pool)
    fraction = TrainConfig().selection_fraction
    table: dict[str, dict[str, list[float]]] = {}
    lines = []
    for role in (Role.learn, Role.select, Role.evaluate):
        per_family = {}
        for k, family in enumerate(FAMILIES):
            examples = role_prompts(TaskGrid([family], [1, 2, 3]), np.random.default_rng([5, k]),
                                    args.per_family, role, fraction)
            hits = torch.stack([correct(braid, BraidSpec((m,)), examples) for m in pool.names], 1)
            per_family[family] = [*hits.mean(0).tolist(), float(hits.max(1).values.mean())]
        table[role.value] = per_family
        lines += [f"{role.value} prompts ({'train split' if role is Role.learn else 'holdout'})",
                  "", "| family | " + " | ".join(pool.names) + " | oracle |",
                  "|---|" + "---:|" * (pool.size + 1)]
        lines += [f"| {f} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
                  for f, row in per_family.items()]
        means = np.array(list(per_family.values())).mean(0)
        own = np.mean([per_family[f][pool.names.index(f"{f}-lora")] for f in FAMILIES])
        lines += ["", f"Mean over families: best single member {means[:-1].max():.3f} "
                  f"({pool.names[int(means[:-1].argmax())]}), each family's own specialist "
                  f"{own:.3f}, oracle {means[-1]:.3f}.", ""]
    lines.append(f"{args.per_family} prompts per family and role. {shared_machine_note()}")
    text = "\n".join(lines)
    print(text, flush=True)
    write_result("braid_pool_skill", {"members": pool.names, "accuracy": table,
                                      "args": vars(args) | {"pool": str(args.pool)}}, text)


if __name__ == "__main__":
    main()
