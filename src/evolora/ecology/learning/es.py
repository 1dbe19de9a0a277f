"""`es`: gradient-free learning of organelle adapters by evolution strategies, in one forward.

Each organelle gets `pairs` antithetic low-rank perturbations of its adapter (theta +/- sigma*u v^T,
regenerated from integer seeds) in scratch slots. Every perturbed adapter scores the organelle's
training batch (the same small batch for all its directions) by the mean per-token log-likelihood
of the reference answers, all organelles and perturbations in one `Host.loglik` call; each
organelle then moves along the fitness-weighted noise, by plain steps (`optimizer: sgd`) or by Adam
on that raw gradient estimate (`optimizer: adam`). Nothing is back-propagated through the host
(Salimans et al. 2017, "Evolution Strategies as a Scalable Alternative to Reinforcement Learning").

An ES estimate over d numbers from N directions has cosine about sqrt(N / (N + d)) with the true
gradient, so on a CPU it learns only slowly on full LoRA factors; on a GPU raise `pairs` into the
thousands, the regime where ES on language models is known to work.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from evolora.ecology.learning.adam import SlotAdam, factor_keys
from evolora.ecology.learning.base import (
    LearningJob,
    LearningResult,
    LearningRule,
    register_rule,
    target_lengths,
)


def es_step(
    host, population, jobs: list[LearningJob], config, rng: np.random.Generator, adam=None
) -> list[LearningResult]:
    """One antithetic ES update for every job, scored in a single batched log-likelihood call.

    With `config.keep_if_better`, the first half of each job's examples estimates the update and
    the second half checks it (one more, small batched call): the update is kept only if it raises
    the fitness of examples it was not estimated on; otherwise the organelle keeps its previous
    adapter. With `adam` (a `SlotAdam`), the estimate drives an Adam step instead of a plain one.
    """
    pairs = 2 * config.pairs
    checks = []
    if config.keep_if_better:
        halves = [len(job.examples) // 2 for job in jobs]
        checks = [
            replace(job, examples=job.examples[h:])
            for job, h in zip(jobs, halves, strict=True)
        ]
        jobs = [
            replace(job, examples=job.examples[:h])
            for job, h in zip(jobs, halves, strict=True)
        ]
    seeds_of = [[int(s) for s in rng.integers(0, 2**31 - 1, size=config.pairs)] for _ in jobs]
    for job, seeds in zip(jobs, seeds_of, strict=True):
        population.perturb(job.slot, job.scratch[:pairs], seeds, config.sigma)
    per_token, tokens = _fitness(host, population, jobs, [job.scratch[:pairs] for job in jobs])

    results = []
    for j, job in enumerate(jobs):
        fitness = per_token[j].mean(axis=1)  # (2 * pairs,)
        plus, minus = fitness[0::2], fitness[1::2]
        spread = float(fitness.std())
        weights = (plus - minus) / (spread + 1e-8)
        if config.keep_if_better:
            population.clone(job.slot, job.scratch[0])  # the adapter before the update
        if adam is None:
            population.es_update(job.slot, seeds_of[j], weights.tolist(), config.sigma, config.lr)
        else:
            adam.step([job.slot], _descent_direction(population, seeds_of[j], weights, config))
            population.project([job.slot])
        results.append(LearningResult(float(fitness.mean()), tokens[j]))
    if config.keep_if_better:
        checked, extra = _fitness(
            host, population, checks, [[job.scratch[0], job.slot] for job in checks]
        )
        for j, (job, result) in enumerate(zip(jobs, results, strict=True)):
            before, after = checked[j].mean(axis=1)
            result.tokens += extra[j]
            if after <= before:
                population.clone(job.scratch[0], job.slot)
                result.accepted = False
    return results


def _descent_direction(population, seeds: list[int], weights: np.ndarray, config) -> dict:
    """Minus the ES estimate of the fitness gradient, (1, ...) per factor key, for `SlotAdam`."""
    coef = 1.0 / (len(seeds) * config.sigma)
    direction = {key: 0.0 for key in factor_keys(population)}
    for seed, w in zip(seeds, weights, strict=True):
        for name, (eps_a, eps_b) in population.noise(seed).items():
            direction[(name, "A")] = direction[(name, "A")] - coef * float(w) * eps_a
            direction[(name, "B")] = direction[(name, "B")] - coef * float(w) * eps_b
    return {key: value.unsqueeze(0) for key, value in direction.items()}


def _fitness(host, population, jobs: list[LearningJob], slots_of: list[list[int]]):
    """Per-token answer log-likelihood of every job's examples under each of its slots, all in one
    batched call: a list of [slots, examples] arrays, and the tokens each job processed."""
    prompts, targets, slots = [], [], []
    for job, job_slots in zip(jobs, slots_of, strict=True):
        for slot in job_slots:
            prompts += [ex.prompt for ex in job.examples]
            targets += [ex.answer + "\n" for ex in job.examples]
            slots += [slot] * len(job.examples)
    total = host.loglik(prompts, targets, adapters=population, adapter_ids=slots).numpy()
    lengths = np.array(target_lengths(host, targets), dtype=float)
    counts = lengths + np.array(target_lengths(host, prompts), dtype=float)
    per_token = total / np.maximum(lengths, 1.0)
    out, tokens, start = [], [], 0
    for job, job_slots in zip(jobs, slots_of, strict=True):
        size = len(job_slots) * len(job.examples)
        out.append(per_token[start : start + size].reshape(len(job_slots), len(job.examples)))
        tokens.append(float(counts[start : start + size].sum()))
        start += size
    return out, tokens


@register_rule
class EvolutionStrategies(LearningRule):
    """Antithetic ES on every organelle's LoRA factors (settings: ESConfig)."""

    name = "es"
    gradient_free = True

    def __init__(self, settings, host, population, genes=None) -> None:
        super().__init__(settings, host, population, genes)
        self.adam = SlotAdam(population, settings.lr) if settings.optimizer == "adam" else None

    @classmethod
    def scratch_slots(cls, config) -> int:
        return 2 * config.learning.es.pairs

    def learn(self, jobs: list[LearningJob], rng: np.random.Generator) -> list[LearningResult]:
        return es_step(self.host, self.population, jobs, self.settings, rng, self.adam)

    def adopt(self, slot: int, parent: int | None) -> None:
        if self.adam is not None:
            self.adam.adopt(slot, parent)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return self.adam.state_tensors("adam.") if self.adam is not None else {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.adam is not None:
            self.adam.load_state_tensors(tensors, "adam.")
