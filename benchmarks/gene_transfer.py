"""Gene transfer: can the colony adapt, gradient-free, to a cell or family none of its genes saw?

For each target (a held-out cell, or a held-out family), a gene pool is grown by back-propagation
(Adam) on OTHER cells only: one gene per source cell, `--gene-steps` steps each. Then the `compose`
rule, which never back-propagates, mixes those genes for the target: it picks the genes that fit
batches of the target's selection prompts best (a share of the holdout split the host never saw;
the evaluated prompts are the rest of it) and tunes their per-block mixing coefficients by ES for
`--compose-steps` steps. Reported: the target's holdout accuracy for the frozen host, the best
single gene, and the composed adapter, with the paired gain over the host and its 95 % interval,
mean ± std over seeds.

python benchmarks/gene_transfer.py [--seeds 0 1 2] [--gene-steps 300] [--compose-steps 60]
                                   [--targets "cell sorting:2" "family sequence" "family math"]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import mean_std, write_result
from ecology_vs_baselines import learn_batch

from evolora.ecology.config import BackpropConfig, ComposeConfig
from evolora.ecology.evaluation import (
    exact_answers,
    holdout_examples,
    paired_difference,
    slot_scores,
)
from evolora.ecology.genes import GenePool, gene_from_slot
from evolora.ecology.learning import LearningJob
from evolora.ecology.learning.backprop import Backprop
from evolora.ecology.learning.compose import Compose
from evolora.ecology.roles import Role, draw_example
from evolora.hosts import load_host
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid

# target -> source cells its genes are trained on (never the target itself)
TARGETS = {
    "cell sorting:2": ("sorting", [2], [("sorting", 1), ("sorting", 3), ("json_repair", 2),
                                        ("math", 2)]),
    "family sequence": ("sequence", [1, 2, 3], [("sorting", 2), ("math", 1), ("json_repair", 1),
                                                 ("logic", 2)]),
    # Arithmetic is what a sequence's next term needs: do sequence genes carry it to math?
    "family math": ("math", [1, 2, 3], [("sequence", 1), ("sequence", 2), ("sequence", 3),
                                         ("sorting", 2)]),
}
GENE_RANK, BATCH, HOLDOUT = 4, 32, 150
SELECTION = 0.4  # the holdout split's share compose fits on (roles.py); the rest is evaluated


def grow_pool(host, sources, steps: int, seed: int) -> GenePool:
    """One back-propagated gene per source cell, all trained together in one batched pass."""
    population = LoRAPopulation(host, n=len(sources), rank=GENE_RANK, alpha=8.0, seed=seed)
    rule = Backprop(BackpropConfig(lr=2e-3), host, population)
    grids = [TaskGrid([family], [difficulty]) for family, difficulty in sources]
    rng = np.random.default_rng([seed, 1])
    try:
        for _ in range(steps):
            jobs = [LearningJob(k, learn_batch(g, rng, BATCH), []) for k, g in enumerate(grids)]
            rule.learn(jobs, rng)
        pool = GenePool(rank=GENE_RANK, capacity=len(sources))
        for k, (family, difficulty) in enumerate(sources):
            pool.add(gene_from_slot(population, k, GENE_RANK, f"{family}:{difficulty}", "import",
                                    -1))
        return pool
    finally:
        population.detach()


def transfer(host, family, difficulties, pool, steps: int, seed: int) -> dict:
    """Compose the pool's genes for the target, gradient-free; score host, best gene, composite."""
    settings = ComposeConfig(mix=len(pool), pairs=8, sigma=0.05, lr=0.05)
    scratch = max(2 * settings.pairs, len(pool))
    population = LoRAPopulation(host, n=2 + scratch, rank=GENE_RANK * len(pool), alpha=8.0,
                                seed=seed)
    rule = Compose(settings, host, population, pool)
    grid = TaskGrid([family], difficulties)
    rng = np.random.default_rng([seed, 2])
    holdout = holdout_examples(grid, HOLDOUT, seed, SELECTION)
    try:
        rule.adopt(0, None)
        for _ in range(steps):
            # The target's selection prompts (holdout split, never evaluated on): on its train
            # prompts the host answers from memory and no gene can look better than it.
            batch = [draw_example(grid, rng, None, Role.select, SELECTION) for _ in range(BATCH)]
            rule.learn([LearningJob(0, batch, list(range(2, 2 + scratch)))], rng)
        # The best single gene at weight 1, for comparison.
        gene_scores = []
        for g in range(len(pool)):
            pool.compose(population, 1, [g], torch.ones(1, rule.coef.shape[2]), rule.groups)
            gene_scores.append(slot_scores(host, population, [1], holdout, 24)[0])
        host_scores, composed = slot_scores(host, population, [-1, 0], holdout, 24)
    finally:
        population.detach()
    correct = {"host": exact_answers(host_scores), "composed": exact_answers(composed)}
    best = max(range(len(pool)), key=lambda g: np.mean(exact_answers(gene_scores[g])))
    return {
        "host": float(np.mean(correct["host"])),
        "best_gene": float(np.mean(exact_answers(gene_scores[best]))),
        "best_gene_name": pool.genes[best].name,
        "composed": float(np.mean(correct["composed"])),
        "gain": paired_difference(correct["composed"], correct["host"]),
        "mix": rule.coefficients(0),
        "holdout": len(holdout),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gene-steps", type=int, default=300)
    parser.add_argument("--compose-steps", type=int, default=60)
    parser.add_argument(
        "--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS),
        help="held-out targets to run (a subset writes its own results section)",
    )
    args = parser.parse_args()
    host = load_host("builtin")
    results = {target: [] for target in args.targets}
    for seed in args.seeds:
        torch.manual_seed(seed)
        for target in args.targets:
            family, difficulties, sources = TARGETS[target]
            pool = grow_pool(host, sources, args.gene_steps, seed)
            result = transfer(host, family, difficulties, pool, args.compose_steps, seed)
            results[target].append(result)
            gain = result["gain"]
            print(f"seed {seed} {target}: host {result['host']:.3f}, best gene "
                  f"{result['best_gene']:.3f}, composed {result['composed']:.3f} "
                  f"({100 * gain['mean']:+.1f} points, 95% [{100 * gain['ci95'][0]:+.1f}, "
                  f"{100 * gain['ci95'][1]:+.1f}])", flush=True)
    rows = [
        "| target (genes trained elsewhere) | host | best single gene | composed, gradient-free "
        "| gain over host, points | 95% interval (seed 0) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for target, runs in results.items():
        gains = [100 * r["gain"]["mean"] for r in runs]
        low, high = (100 * x for x in runs[0]["gain"]["ci95"])
        rows.append(
            f"| {target} | {mean_std([r['host'] for r in runs])} | "
            f"{mean_std([r['best_gene'] for r in runs])} | "
            f"{mean_std([r['composed'] for r in runs])} | {mean_std(gains, 1, signed=True)} | "
            f"[{low:+.1f}, {high:+.1f}] |"
        )
    text = (
        f"{len(args.seeds)} seeds; genes: {args.gene_steps} Adam steps (batch {BATCH}) on each "
        f"source cell; compose: {args.compose_steps} ES steps over per-block mixing coefficients "
        f"(no back-propagation); up to {HOLDOUT} distinct holdout prompts per target cell.\n\n"
        + "\n".join(rows)
        + "\n\nTarget: gradient-free composition >= host + 10 points on the held-out target."
    )
    print(text)
    name = "gene_transfer"
    if args.targets != list(TARGETS):
        name += "_" + "_".join(t.split()[-1].replace(":", "") for t in args.targets)
    write_result(name, {t: r for t, r in results.items()}, text)


if __name__ == "__main__":
    main()
