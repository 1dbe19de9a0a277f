"""How well each gradient-free rule's update points along the true gradient, on the built-in host.

A rule that learns without back-propagation estimates, from forward passes only, the direction
that raises the answers' log-likelihood. This script measures that estimate directly: for a fresh
organelle (the ecology's starting adapter) and a fixed batch of training examples, it computes the
true gradient of the batch's mean per-token log-likelihood with autograd (for measurement only),
then takes each rule's update from the same starting point, several times with fresh noise, and
reports the cosine between update and gradient: for one step, and for the sum of all the steps
(what averaging more samples would buy). A random direction scores about 1/sqrt(parameters).
  es        the ecology's antithetic low-rank ES step (no keep-if-better check)
  es_host   the same ES step on an adapter in the host basis (`lora.basis: host`, LoRA-XS): r x r
            cores in each layer's top singular directions; its cosine is taken against the
            gradient restricted to those directions, the only ones it can move
  hebbian   the ecology's reward-modulated Hebbian step (node perturbation)
  hebbian_one_example
            the same step on a batch of copies of one example: each row then estimates the same
            gradient, which shows how much of Hebbian's weakness is the spread between examples

python benchmarks/gradient_alignment.py [--steps 16] [--batch 64] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import mean_std, write_result
from ecology_vs_baselines import learn_batch

from evolora.ecology.colony import adapter_population
from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.learning import LearningJob, answer_logprobs
from evolora.ecology.learning.adam import factor_keys, factor_table
from evolora.ecology.learning.backprop import factor_gradients
from evolora.ecology.learning.es import es_step
from evolora.ecology.learning.hebbian import hebbian_step
from evolora.hosts import load_host
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid
from evolora.telemetry.config_io import load_config


def factor_tables(population: LoRAPopulation) -> list[torch.Tensor]:
    """The population's factor tables: every layer's A, then every layer's B."""
    keys = factor_keys(population)
    return [factor_table(population, k) for k in keys if k[1] == "A"] + [
        factor_table(population, k) for k in keys if k[1] == "B"
    ]


def flat(population: LoRAPopulation, slot: int) -> torch.Tensor:
    """One organelle's A and B factors as a single vector (the order of `factor_tables`)."""
    return torch.cat([table[slot].flatten() for table in factor_tables(population)])


def true_gradient(host, population: LoRAPopulation, batch: list) -> torch.Tensor:
    """Gradient of the batch's mean per-token answer log-likelihood w.r.t. organelle 0, restricted
    to the directions its learner can move (with the host basis: A's top singular rows, not B)."""
    with factor_gradients(population):
        answer_logprobs(host, population, batch, [0] * len(batch)).mean().backward()
        grads = [t.grad[0] for t in factor_tables(population)]
    if population.host_basis:
        layers = len(population.layer_names)
        bases = population.host_basis.values()
        grads = [g @ v_t.t() @ v_t for g, (_, _, v_t) in zip(grads[:layers], bases, strict=True)]
        grads += [torch.zeros_like(t[0]) for t in factor_tables(population)[layers:]]
    return torch.cat([g.flatten() for g in grads])


def learnable_parameters(population: LoRAPopulation) -> int:
    """Numbers the learner searches for one organelle: all of A and B, or r^2 per layer."""
    if population.host_basis:
        return population.rank**2 * len(population.layer_names)
    return sum(t[0].numel() for t in factor_tables(population))


def cosine(u: torch.Tensor, v: torch.Tensor) -> float:
    """Cosine of the angle between two vectors (0 when either is zero)."""
    norm = float(u.norm() * v.norm())
    return float(u @ v) / norm if norm > 0 else 0.0


def measure(cfg, host, rule: str, steps: int, size: int, seed: int) -> dict:
    """Per-step and summed-update cosines of one rule against the true gradient, for one seed."""
    pairs = cfg.learning.es.pairs
    if rule == "es_host":
        cfg = cfg.model_copy(deep=True)
        cfg.lora.basis = "host"
    population = adapter_population(host, cfg, 1 + 2 * pairs)
    rng = np.random.default_rng(seed)
    grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    if rule == "hebbian_one_example":
        batch = learn_batch(grid, rng, 1) * size
    else:
        batch = learn_batch(grid, rng, size)
    try:
        gradient = true_gradient(host, population, batch)
        start = population.get_member(0)
        origin = flat(population, 0)
        es_config = cfg.learning.es.model_copy(update={"keep_if_better": False})
        per_step, total = [], torch.zeros_like(origin)
        for _ in range(steps):
            if rule.startswith("es"):
                job = LearningJob(0, batch, list(range(1, 1 + 2 * pairs)))
                es_step(host, population, [job], es_config, rng)
            else:
                job = LearningJob(0, batch, [])
                hebbian_step(host, population, [job], cfg.learning.hebbian, rng)
            update = flat(population, 0) - origin
            per_step.append(cosine(update, gradient))
            total += update
            population.set_member(0, start)
        forwards = size * (2 * pairs if rule.startswith("es") else 2)
        return {
            "step": float(np.mean(per_step)),
            "summed": cosine(total, gradient),
            "forwards_per_step": forwards,
            "parameters": learnable_parameters(population),
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
    rules = ("es", "es_host", "hebbian", "hebbian_one_example")
    results: dict[str, list[dict]] = {rule: [] for rule in rules}
    for seed in args.seeds:
        seeded = cfg.model_copy(update={"seed": seed})
        for rule, runs in results.items():
            runs.append(measure(seeded, host, rule, args.steps, args.batch, seed))
            print(f"seed {seed} {rule:>8}: {runs[-1]}", flush=True)
    rows = [
        "| rule | parameters searched | rows scored per step | cos, one step | cos, sum of steps |",
        "|---|---:|---:|---:|---:|",
    ]
    figures: dict = {"steps": args.steps, "batch": args.batch}
    for rule, runs in results.items():
        step = np.array([r["step"] for r in runs])
        summed = np.array([r["summed"] for r in runs])
        figures[rule] = {
            "step_mean": float(step.mean()),
            "step_std": float(step.std()),
            "summed_mean": float(summed.mean()),
            "summed_std": float(summed.std()),
            "forwards_per_step": runs[0]["forwards_per_step"],
            "parameters": runs[0]["parameters"],
        }
        rows.append(
            f"| {rule} | {runs[0]['parameters']} | {runs[0]['forwards_per_step']} "
            f"| {mean_std(step, signed=True)} | {mean_std(summed, signed=True)} |"
        )
    text = (
        f"Cosine between each rule's update and the true gradient of a {args.batch}-example "
        f"batch's mean per-token log-likelihood, for a fresh organelle of the `{args.config}` "
        f"preset (a random direction scores about 1/sqrt(parameters searched)); {args.steps} "
        f"updates from the same start with fresh noise, {len(args.seeds)} seeds, mean ± std.\n\n"
        + "\n".join(rows)
    )
    print(text)
    write_result("gradient_alignment", figures, text)


if __name__ == "__main__":
    main()
