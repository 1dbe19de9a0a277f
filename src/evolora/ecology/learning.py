"""Gradient-free learning of organelle adapters: evolution strategies in one batched forward.

Each organelle gets `pairs` antithetic low-rank perturbations of its adapter (theta +/- sigma*u v^T,
regenerated from integer seeds). Every perturbed adapter scores the organelle's training batch by
the mean per-token log-likelihood of the reference answers, all organelles and perturbations in one
`Host.loglik` call; each organelle then moves along the fitness-weighted noise. Nothing is
back-propagated through the host (Salimans et al. 2017, "Evolution Strategies as a Scalable
Alternative to Reinforcement Learning").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evolora.ecology.config import ESConfig
from evolora.tasks import Example


@dataclass
class ESJob:
    """One organelle's share of an ES step: its slot, training examples and scratch slots."""

    slot: int
    examples: list[Example]
    scratch: list[int]


@dataclass
class ESResult:
    """What an ES step did for one organelle."""

    slot: int
    fitness_mean: float
    fitness_spread: float
    tokens: int


def es_step(
    host, population, jobs: list[ESJob], config: ESConfig, rng: np.random.Generator
) -> list[ESResult]:
    """One antithetic ES update for every job, scored in a single batched log-likelihood call."""
    prompts, targets, slots, owners = [], [], [], []
    seeds_of = []
    for j, job in enumerate(jobs):
        seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=config.pairs)]
        seeds_of.append(seeds)
        population.perturb(job.slot, job.scratch[: 2 * config.pairs], seeds, config.sigma)
        for k in range(2 * config.pairs):
            for example in job.examples:
                prompts.append(example.prompt)
                targets.append(example.answer + "\n")
                slots.append(job.scratch[k])
                owners.append((j, k))
    total = host.loglik(prompts, targets, adapters=population, adapter_ids=slots).numpy()
    lengths = np.array(target_lengths(host, targets), dtype=float)
    per_token = total / np.maximum(lengths, 1.0)
    prompt_lengths = target_lengths(host, prompts)

    results = []
    owners_arr = np.array(owners)
    for j, job in enumerate(jobs):
        mask = owners_arr[:, 0] == j
        fitness = np.array(
            [per_token[mask & (owners_arr[:, 1] == k)].mean() for k in range(2 * config.pairs)]
        )
        plus, minus = fitness[0::2], fitness[1::2]
        spread = float(fitness.std())
        weights = (plus - minus) / (spread + 1e-8)
        population.es_update(job.slot, seeds_of[j], weights.tolist(), config.sigma, config.lr)
        tokens = int(lengths[mask].sum() + np.asarray(prompt_lengths)[mask].sum())
        results.append(ESResult(job.slot, float(fitness.mean()), spread, tokens))
    return results


def target_lengths(host, texts: list[str]) -> list[int]:
    """Token count of each text under the host's tokenizer (no special tokens)."""
    return [len(ids) for ids in host.tokenizer(texts, add_special_tokens=False)["input_ids"]]
