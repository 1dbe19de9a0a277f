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
import torch

from evolora.ecology.config import ESConfig
from evolora.hosts.generation import encode, target_logprobs
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
    accepted: bool


def es_step(
    host, population, jobs: list[ESJob], config: ESConfig, rng: np.random.Generator
) -> list[ESResult]:
    """One antithetic ES update for every job, scored in a single batched log-likelihood call.

    With `config.keep_if_better`, the first half of each job's examples estimates the update and
    the second half checks it (one more, small batched call): the update is kept only if it raises
    the fitness of examples it was not estimated on; otherwise the organelle keeps its previous
    adapter. Most of an ES step is noise, and near a trained host noise only hurts: the check on
    fresh examples keeps that noise from accumulating.
    """
    pairs = 2 * config.pairs
    checks = []
    if config.keep_if_better:
        halves = [len(job.examples) // 2 for job in jobs]
        checks = [
            ESJob(job.slot, job.examples[h:], job.scratch)
            for job, h in zip(jobs, halves, strict=True)
        ]
        jobs = [
            ESJob(job.slot, job.examples[:h], job.scratch)
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
        population.es_update(job.slot, seeds_of[j], weights.tolist(), config.sigma, config.lr)
        results.append(ESResult(job.slot, float(fitness.mean()), spread, tokens[j], True))
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


def _fitness(host, population, jobs: list[ESJob], slots_of: list[list[int]]):
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
        tokens.append(int(counts[start : start + size].sum()))
        start += size
    return out, tokens


def target_lengths(host, texts: list[str]) -> list[int]:
    """Token count of each text under the host's tokenizer (no special tokens)."""
    return [len(ids) for ids in host.tokenizer(texts, add_special_tokens=False)["input_ids"]]


def answer_logprobs(host, population, examples: list[Example], slots: list[int]) -> torch.Tensor:
    """Each example's mean per-token log-likelihood of its answer under its slot's adapter, on the
    population's device, differentiable when gradients are on."""
    heads = encode(host.tokenizer, [ex.prompt for ex in examples], special=True)
    tails = encode(host.tokenizer, [ex.answer + "\n" for ex in examples], special=False)
    lengths = torch.tensor([len(t) for t in tails], dtype=torch.float32, device=population.device)
    pad = host.tokenizer.pad_token_id
    return target_logprobs(host.model, heads, tails, pad, population.route(slots)) / lengths
