"""Reward-modulated Hebbian learning of organelle adapters, by node perturbation.

During one teacher-forced pass over an organelle's training batch, every adapted layer adds
Gaussian noise zeta to its low-rank output on that organelle's rows and keeps, per row, a Hebbian
eligibility trace: post-synaptic noise times pre-synaptic activity, zeta h^T for B (h = A x, the
adapter's hidden units) and (B^T zeta) x^T for A. A row's reward is how much its noisy pass raised
the answer's per-token log-likelihood over the clean pass; every adapter then moves along its
reward-weighted traces (Williams 1992, REINFORCE; Fiete & Seung 2006, node perturbation). The rule
reads only each adapter's own inputs, outputs and factors: nothing is back-propagated through the
host.
"""

from __future__ import annotations

import numpy as np
import torch

from evolora.ecology.learning.base import (
    LearningJob,
    LearningResult,
    LearningRule,
    answer_logprobs,
    example_tokens,
    register_rule,
)
from evolora.lora.layer import PopulationLinear


class _Traces:
    """Forward hooks that inject node noise and accumulate per-row eligibility traces."""

    def __init__(self, population, sigma: float, generator: torch.Generator):
        self.population, self.sigma, self.generator = population, sigma, generator
        self.a: dict[str, torch.Tensor] = {}
        self.b: dict[str, torch.Tensor] = {}
        self.tokens = 1

    def __call__(self, module: PopulationLinear, inputs, output: torch.Tensor) -> torch.Tensor:
        routing = self.population.routing
        name = module.layer_name
        batch = routing.ids.shape[0]
        x3 = inputs[0].reshape(batch, -1, inputs[0].shape[-1])  # (B, T, in)
        a = self.population.A[name].index_select(0, routing.safe_ids)  # (B, r, in)
        b = self.population.B[name].index_select(0, routing.safe_ids)  # (B, out, r)
        h = torch.bmm(x3, a.transpose(1, 2))  # (B, T, r)
        # One noise vector per row, held over its tokens: T times fewer dimensions to explore.
        shape = (batch, 1, output.shape[-1])
        noise = torch.randn(shape, generator=self.generator, device=self.generator.device)
        zeta = (
            noise.to(output.device, output.dtype) * self.sigma * (routing.ids >= 0).view(-1, 1, 1)
        )
        self.b[name] = torch.bmm(zeta.transpose(1, 2), h.sum(1, keepdim=True))  # (B, out, r)
        back = torch.bmm(zeta, b)  # (B, 1, r)
        self.a[name] = torch.bmm(back.transpose(1, 2), x3.sum(1, keepdim=True))  # (B, r, in)
        self.tokens = x3.shape[1]
        return (output.view(shape[0], -1, shape[2]) + zeta).view_as(output)


def hebbian_step(
    host, population, jobs: list[LearningJob], config, rng: np.random.Generator
) -> list[float]:
    """One reward-modulated Hebbian update per job; returns each job's mean clean fitness."""
    examples = [ex for job in jobs for ex in job.examples]
    slots = [job.slot for job in jobs for _ in job.examples]
    with torch.no_grad():
        clean = answer_logprobs(host, population, examples, slots)
    generator = torch.Generator(device=population.device)
    generator.manual_seed(int(rng.integers(0, 2**62)))
    traces = _Traces(population, config.noise, generator)
    hooks = [
        m.register_forward_hook(traces)
        for m in host.model.modules()
        if isinstance(m, PopulationLinear) and m._population is population
    ]
    try:
        with torch.no_grad():
            noisy = answer_logprobs(host, population, examples, slots)
    finally:
        for hook in hooks:
            hook.remove()

    gain = noisy - clean
    fitness, start = [], 0
    for job in jobs:
        rows = slice(start, start + len(job.examples))
        start += len(job.examples)
        reward = gain[rows]
        reward = (reward - reward.mean()) / (reward.std(unbiased=False) + 1e-8)
        coef = config.lr / (len(job.examples) * config.noise * traces.tokens)
        with torch.no_grad():
            for name in population.layer_names:
                population.B[name][job.slot] += coef * torch.einsum(
                    "b,bor->or", reward, traces.b[name][rows]
                )
                population.A[name][job.slot] += coef * torch.einsum(
                    "b,bri->ri", reward, traces.a[name][rows]
                )
        fitness.append(float(clean[rows].mean()))
    population.project([job.slot for job in jobs])  # back into the host basis, if it has one
    return fitness


@register_rule
class Hebbian(LearningRule):
    """Reward-modulated Hebbian updates by node perturbation (settings: HebbianConfig)."""

    name = "hebbian"
    gradient_free = True

    def learn(self, jobs: list[LearningJob], rng: np.random.Generator) -> list[LearningResult]:
        fitness = hebbian_step(self.host, self.population, jobs, self.settings, rng)
        results = []
        for job, f in zip(jobs, fitness, strict=True):  # a clean and a noisy pass over the batch
            results.append(LearningResult(f, 2.0 * sum(example_tokens(self.host, job.examples))))
        return results
