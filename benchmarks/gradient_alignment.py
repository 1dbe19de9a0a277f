"""How well each gradient-free rule's update points along the true gradient, on the built-in host.

A rule that learns without back-propagation estimates, from forward passes only, the direction
that raises the answers' log-likelihood. This script measures that estimate directly: for a fresh
organelle (the ecology's starting adapter) and a fixed batch of training examples, it computes the
true gradient of the batch's mean per-token log-likelihood with autograd (for measurement only),
then takes each rule's update from the same starting point, several times with fresh noise, and
reports the cosine between update and gradient: for one step, and for the sum of all the steps
(what averaging more samples would buy). A random direction scores about 1/sqrt(parameters).
  es        the ecology's antithetic low-rank ES step (no keep-if-better check)
  hebbian   the ecology's reward-modulated Hebbian step (node perturbation)

python benchmarks/gradient_alignment.py [--steps 16] [--batch 64] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import mean_std, write_result
from ecology_vs_baselines import train_batch

from evolora.ecology.backprop import factor_gradients, factor_tables
from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.hebbian import HebbianJob, hebbian_step
from evolora.ecology.learning import ESJob, answer_logprobs, es_step
from evolora.hosts import load_host
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid
from evolora.telemetry.config_io import load_config


def flat(population: LoRAPopulation, slot: int) -> torch.Tensor:
    """One organelle's A and B factors as a single vector (the order of `factor_tables`)."""
    return torch.cat([table[slot].flatten() for table in factor_tables(population)])


def true_gradient(host, population: LoRAPopulation, batch: list) -> torch.Tensor:
    """Gradient of the batch's mean per-token answer log-likelihood w.r.t. organelle 0."""
    with factor_gradients(population) as factors:
        answer_logprobs(host, population, batch, [0] * len(batch)).mean().backward()
        return torch.cat([t.grad[0].flatten() for t in factors])


def cosine(u: torch.Tensor, v: torch.Tensor) -> float:
    """Cosine of the angle between two vectors (0 when either is zero)."""
    norm = float(u.norm() * v.norm())
    return float(u @ v) / norm if norm > 0 else 0.0


def measure(cfg, host, rule: str, steps: int, size: int, seed: int) -> dict:
    """Per-step and summed-update cosines of one rule against the true gradient, for one seed."""
    pairs = cfg.learning.es.pairs
    population = LoRAPopulation(
        host,
        n=1 + 2 * pairs,
        rank=cfg.lora.rank,
        alpha=cfg.lora.alpha,
        targets=cfg.lora.targets,
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    batch = train_batch(grid, rng, size)
    try:
        gradient = true_gradient(host, population, batch)
        start = population.get_member(0)
        origin = flat(population, 0)
        es_config = cfg.learning.es.model_copy(update={"keep_if_better": False})
        per_step, total = [], torch.zeros_like(origin)
        for _ in range(steps):
            if rule == "es":
                job = ESJob(0, batch, list(range(1, 1 + 2 * pairs)))
                es_step(host, population, [job], es_config, rng)
            else:
                hebbian_step(host, population, [HebbianJob(0, batch)], cfg.learning.hebbian, rng)
            update = flat(population, 0) - origin
            per_step.append(cosine(update, gradient))
            total += update
            population.set_member(0, start)
        forwards = size * (2 * pairs if rule == "es" else 2)
        return {
            "step": float(np.mean(per_step)),
            "summed": cosine(total, gradient),
            "forwards_per_step": forwards,
            "parameters": int(origin.numel()),
        }
    finally:
        population.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16, help="updates per rule and seed")
    parser.add_argument("--batch", type=int, default=64, help="training examples per update")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default="default", help="ecology preset or YAML file")
    args = parser.parse_args()
    cfg = load_config(preset_path(args.config), EcologyConfig)
    host = load_host(cfg.host, cfg.device)
    results: dict[str, list[dict]] = {"es": [], "hebbian": []}
    for seed in args.seeds:
        for rule, runs in results.items():
            runs.append(measure(cfg, host, rule, args.steps, args.batch, seed))
            print(f"seed {seed} {rule:>8}: {runs[-1]}", flush=True)
    parameters = results["es"][0]["parameters"]
    rows = [
        "| rule | rows scored per step | cos, one step | cos, sum of steps |",
        "|---|---:|---:|---:|",
    ]
    figures: dict = {"parameters": parameters, "steps": args.steps, "batch": args.batch}
    for rule, runs in results.items():
        step = np.array([r["step"] for r in runs])
        summed = np.array([r["summed"] for r in runs])
        figures[rule] = {
            "step_mean": float(step.mean()),
            "step_std": float(step.std()),
            "summed_mean": float(summed.mean()),
            "summed_std": float(summed.std()),
            "forwards_per_step": runs[0]["forwards_per_step"],
        }
        rows.append(
            f"| {rule} | {runs[0]['forwards_per_step']} | {mean_std(step, signed=True)} "
            f"| {mean_std(summed, signed=True)} |"
        )
    text = (
        f"Cosine between each rule's update and the true gradient of a {args.batch}-example "
        f"batch's mean per-token log-likelihood, for a fresh organelle of the `{args.config}` "
        f"preset ({parameters} LoRA parameters; a random direction scores about "
        f"±{1 / np.sqrt(parameters):.3f}); {args.steps} updates from the same start with fresh "
        f"noise, {len(args.seeds)} seeds, mean ± std.\n\n" + "\n".join(rows)
    )
    print(text)
    write_result("gradient_alignment", figures, text)


if __name__ == "__main__":
    main()
