"""Reference learner: organelle adapters trained by back-propagation through the frozen host.

This is NOT the ecology's rule (ES and Hebbian never send a gradient through the host). It exists
to check the colony's machinery separately from its learning rule: with a learner that can find
better adapters, routing, assimilation and the diversity guard have something to act on. All
organelles learn in one batched forward and backward; each moves by sign descent (signSGD,
Bernstein et al. 2018): every factor entry steps by `lr` against the sign of its gradient, which
needs no optimiser state, so checkpoints and `--resume` stay exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from evolora.ecology.config import BackpropConfig
from evolora.ecology.learning import answer_logprobs
from evolora.tasks import Example


@dataclass
class BackpropJob:
    """One organelle's share of a backprop step: its slot and training examples."""

    slot: int
    examples: list[Example]


def factor_tables(population) -> list[torch.Tensor]:
    """The population's A tables then its B tables, in layer order."""
    return [population.A[n] for n in population.layer_names] + [
        population.B[n] for n in population.layer_names
    ]


@contextmanager
def factor_gradients(population) -> Iterator[list[torch.Tensor]]:
    """Gradients on the population's A and B tables (all layers, A first) inside the block; the
    tables are yielded, and their gradients dropped on leaving."""
    factors = factor_tables(population)
    for tensor in factors:
        tensor.requires_grad_(True)
    try:
        with torch.enable_grad():
            yield factors
    finally:
        for tensor in factors:
            tensor.grad = None
            tensor.requires_grad_(False)


def backprop_step(host, population, jobs: list[BackpropJob], config: BackpropConfig) -> list[float]:
    """One sign-descent step on every job's mean per-token answer log-likelihood; returns each
    job's fitness (that log-likelihood) before the step."""
    examples = [ex for job in jobs for ex in job.examples]
    slots = [job.slot for job in jobs for _ in job.examples]
    with factor_gradients(population) as factors:
        per_token = answer_logprobs(host, population, examples, slots)
        # Each organelle's loss is its own mean, so one backward gives every slot its gradient.
        sizes = torch.tensor([len(job.examples) for job in jobs], device=population.device)
        weights = torch.repeat_interleave(1.0 / sizes, sizes)
        (-(per_token * weights).sum()).backward()
        with torch.no_grad():
            for tensor in factors:
                for job in jobs:
                    tensor[job.slot] -= config.lr * torch.sign(tensor.grad[job.slot])
    population.project([job.slot for job in jobs])  # back into the host basis, if it has one
    per_token = per_token.detach()
    fitness, start = [], 0
    for job in jobs:
        fitness.append(float(per_token[start : start + len(job.examples)].mean()))
        start += len(job.examples)
    return fitness
