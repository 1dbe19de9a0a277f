"""`backprop`: organelle adapters trained with Adam, gradients back-propagated through the host.

The reference rule, and NOT gradient-free: the host stays frozen, but the gradient of each
organelle's answer log-likelihood flows back through every host layer to its LoRA factors. Each
organelle then takes an Adam step with its own moments (adam.py), which follow it through
reproduction and are checkpointed, so `--resume` stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from evolora.ecology.learning.adam import SlotAdam, factor_keys, factor_table
from evolora.ecology.learning.base import (
    LearningJob,
    LearningResult,
    LearningRule,
    answer_logprobs,
    example_tokens,
    register_rule,
)

BACKWARD_COST = 2.0  # a backward pass costs about two forwards


@contextmanager
def factor_gradients(population) -> Iterator[list[torch.Tensor]]:
    """Gradients on the population's factor tables inside the block (in `factor_keys` order);
    the tables are yielded, and their gradients dropped on leaving."""
    factors = [factor_table(population, key) for key in factor_keys(population)]
    for tensor in factors:
        tensor.requires_grad_(True)
    try:
        with torch.enable_grad():
            yield factors
    finally:
        for tensor in factors:
            tensor.grad = None
            tensor.requires_grad_(False)


def scheduled_lr(settings, progress: float | None, family: str | None = None) -> float:
    """The Adam rate at `progress` (0 to 1) through the run under the settings' schedule, from
    the family's peak rate (`family_lr`, else `lr`); the peak outside a run (progress None) or
    with the constant schedule."""
    peak = settings.family_lr.get(family, settings.lr) if family else settings.lr
    if progress is None or settings.schedule == "constant":
        return peak
    progress = min(max(progress, 0.0), 1.0)
    warm = 1.0 if settings.warmup == 0 else min(1.0, progress / settings.warmup)
    return peak * warm * 0.5 * (1.0 + math.cos(math.pi * progress))


@register_rule
class Backprop(LearningRule):
    """Adam on each organelle's mean per-token answer log-likelihood (settings: BackpropConfig)."""

    name = "backprop"
    gradient_free = False

    def __init__(self, settings, host, population, genes=None) -> None:
        super().__init__(settings, host, population, genes)
        self.adam = SlotAdam(population, settings.lr, (settings.beta1, settings.beta2))

    def learn(self, jobs: list[LearningJob], rng: np.random.Generator) -> list[LearningResult]:
        results = []
        for job in jobs:
            # One pass per organelle: its rows share a family's lengths, so little is padded
            # (one mixed batch pads every row to the longest family and costs twice as much).
            with factor_gradients(self.population) as factors:
                per_token = answer_logprobs(
                    self.host, self.population, job.examples, [job.slot] * len(job.examples)
                )
                (-per_token.mean()).backward()
                grads = {
                    key: tensor.grad[[job.slot]]
                    for key, tensor in zip(self.adam.keys, factors, strict=True)
                }
            self.adam.step([job.slot], grads, scheduled_lr(self.settings, job.progress, job.family))
            tokens = sum(example_tokens(self.host, job.examples))
            results.append(
                LearningResult(float(per_token.detach().mean()), (1 + BACKWARD_COST) * tokens)
            )
        self.population.project([job.slot for job in jobs])  # back into the host basis, if any
        return results

    def adopt(self, slot: int, parent: int | None) -> None:
        self.adam.adopt(slot, parent)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return self.adam.state_tensors("adam.")

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.adam.load_state_tensors(tensors, "adam.")
