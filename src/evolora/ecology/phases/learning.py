"""Lifetime learning: every active organelle learns on fresh tasks of its niche by the configured
rules (learning/), and pays for the compute each rule reports.

The phase is planned before it runs: the training batches of every step and one seed per
organelle are drawn from the run's generator first, and each organelle then learns from its own
plan alone. So the organelles are independent of each other and of where they learn: in this
process, or sharded over Ray actors (shards.py) with the same result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evolora.ecology.energy import Compute, apply, compute_cost
from evolora.ecology.learning import LearningJob
from evolora.ecology.organelle import Organelle, niche_family
from evolora.ecology.roles import Role
from evolora.tasks import Example


@dataclass
class LearningPlan:
    """One organelle's learning this generation: its slot, its niche's family (None for a
    generalist), its scratch slots, the examples and the run's progress (0 to 1, for scheduled
    rules) of each step, and the seed of the rules' randomness."""

    slot: int
    family: str | None
    scratch: list[int]
    batches: list[list[Example]]
    progress: list[float]
    seed: int


def learn(eco, active: list[Organelle]) -> list[float]:
    """Every active organelle learns, by each configured rule in turn, on fresh training tasks
    of its niche (cells drawn in proportion to their market price); the compute each rule
    reports is charged to the organelle.
    Returns each organelle's fitness (mean per-token answer log-likelihood)."""
    if not active:
        return []
    plans = plan_learning(eco, active)
    shards = eco.learning_shards()
    if shards is not None:
        outcomes = shards.learn(eco, plans)
    else:
        outcomes = [learn_from_plan(eco.rules, plan) for plan in plans]
    for o, (_, spent) in zip(active, outcomes, strict=True):
        compute = Compute(eco.flops_per_token * spent, 0.0, eco.adapter_params)
        cost = compute_cost(compute, eco.config.energy)
        o.energy = apply(o.energy, -cost, eco.config.energy.cap)
        o.cost += cost
    return [fitness for fitness, _ in outcomes]


def plan_learning(eco, active: list[Organelle]) -> list[LearningPlan]:
    """Draw every organelle's training batches (step by step, organelle by organelle) and then
    one seed per organelle from the run's generator."""
    learning = eco.config.learning
    batches: list[list[list[Example]]] = [[] for _ in active]
    for _ in range(learning.steps):
        for k, o in enumerate(active):
            # The market is the curriculum: cells the colony fails (high prices) are learned
            # more often than cells it already solves.
            niche = eco.niche_cells(o.niche)
            prices = np.array([eco.market.prices[c] for c in niche])
            picks = eco.rng.choice(len(niche), size=learning.batch, p=prices / prices.sum())
            batches[k].append([eco.example(niche[i], Role.learn) for i in picks])
    seeds = eco.rng.integers(0, 2**63 - 1, size=len(active))
    progress = step_progress(eco)
    return [
        LearningPlan(
            o.slot, niche_family(o.niche), eco.colony.scratch_for(k), batches[k], progress, int(s)
        )
        for k, (o, s) in enumerate(zip(active, seeds, strict=True))
    ]


def step_progress(eco) -> list[float]:
    """How far through the run's learning steps each of this generation's steps is (its middle,
    so that neither the first nor the last step of a run has a zero scheduled rate)."""
    steps, total = eco.config.learning.steps, eco.config.learning.steps * eco.config.generations
    first = (eco.generation - 1) * steps
    return [(first + k + 0.5) / total for k in range(steps)]


def learn_from_plan(rules, plan: LearningPlan) -> tuple[float, float]:
    """Run one organelle's plan: each step, each rule in turn. Returns its last fitness and the
    compute spent (forward-token equivalents)."""
    rng = np.random.default_rng(plan.seed)
    fitness, tokens = 0.0, 0.0
    for batch, progress in zip(plan.batches, plan.progress, strict=True):
        job = LearningJob(plan.slot, batch, plan.scratch, progress, plan.family)
        for rule in rules:
            (result,) = rule.learn([job], rng)
            if math.isfinite(result.fitness):
                fitness = result.fitness
            tokens += result.tokens
    return fitness, tokens
