"""Lifetime learning: every active organelle learns on fresh tasks of its niche by the configured
rules (learning/), and pays for the compute each rule reports."""

from __future__ import annotations

import numpy as np

from evolora.ecology.energy import Compute, apply, compute_cost
from evolora.ecology.learning import LearningJob
from evolora.ecology.organelle import Organelle
from evolora.ecology.roles import Role


def learn(eco, active: list[Organelle]) -> list[float]:
    """Every active organelle learns, by each configured rule in turn, on fresh training tasks
    of its niche (cells drawn in proportion to their market price); the compute each rule
    reports is charged to the organelle.
    Returns each organelle's fitness (mean per-token answer log-likelihood)."""
    learning = eco.config.learning
    if not active:
        return []
    fitness, tokens = np.zeros(len(active)), np.zeros(len(active))
    for _ in range(learning.steps):
        jobs = []
        for k, o in enumerate(active):
            # The market is the curriculum: cells the colony fails (high prices) are learned
            # more often than cells it already solves.
            niche = eco.niche_cells(o.niche)
            prices = np.array([eco.market.prices[c] for c in niche])
            picks = eco.rng.choice(len(niche), size=learning.batch, p=prices / prices.sum())
            batch = [eco.train_example(niche[i], Role.learn) for i in picks]
            jobs.append(LearningJob(o.slot, batch, eco.colony.scratch_for(k)))
        for rule in eco.rules:
            results = rule.learn(jobs, eco.rng)
            acted = np.array([r.fitness for r in results])
            fitness = np.where(np.isfinite(acted), acted, fitness)
            tokens += [r.tokens for r in results]
    for o, spent in zip(active, tokens, strict=True):
        compute = Compute(eco.flops_per_token * spent, 0.0, eco.adapter_params)
        cost = compute_cost(compute, eco.config.energy)
        o.energy = apply(o.energy, -cost, eco.config.energy.cap)
        o.cost += cost
    return fitness.tolist()
