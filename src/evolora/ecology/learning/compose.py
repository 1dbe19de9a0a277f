"""`compose`: gradient-free recombination of genes, by ES over per-block mixing coefficients.

An organelle's adapter becomes the exact mix sum_g c[g, block] ΔW_g of up to `mix` genes of the
colony's gene pool (genes.py), with one coefficient per gene and transformer block: a few dozen
numbers instead of tens of thousands of LoRA entries, the regime where evolution strategies are
efficient (LoraHub, Huang et al. 2023, searches ~20 such coefficients gradient-free). Each step
scores `pairs` antithetic perturbations c +/- sigma*eps on the organelle's batch in one batched
log-likelihood call and moves c by Adam along the raw estimate. Nothing is back-propagated.

A new organelle picks its genes by how well each gene alone fits its first batch (a gene that
does not beat the bare host is not picked) and starts from the best one at weight 1. With
`birth_steps` set, the rule tunes a newborn's mix for that many steps at its first learning step
and then leaves it alone (so `[compose, backprop]` means: offspring recombine genes, then learn by
back-propagation); with `birth_steps: null` it takes one step every generation, for life.
"""

from __future__ import annotations

import numpy as np
import torch

from evolora.ecology.genes import layer_groups
from evolora.ecology.learning.base import (
    LearningJob,
    LearningResult,
    LearningRule,
    register_rule,
)
from evolora.ecology.learning.es import _fitness


@register_rule
class Compose(LearningRule):
    """ES over per-block mixing coefficients of gene-pool genes (settings: ComposeConfig)."""

    name = "compose"
    gradient_free = True

    def __init__(self, settings, host, population, genes=None) -> None:
        super().__init__(settings, host, population, genes)
        self.groups = layer_groups(population.layer_names)
        n, g, k = population.n, settings.mix, max(self.groups) + 1
        self.chosen = torch.full((n, g), -1, dtype=torch.long)  # pool index per place, -1: none
        self.coef = torch.zeros(n, g, k)
        self.m, self.v = torch.zeros(n, g, k), torch.zeros(n, g, k)
        self.t = torch.zeros(n)  # steps taken since birth (also Adam's step count)
        self.fresh = torch.zeros(n, dtype=torch.bool)  # born, genes not picked yet

    @classmethod
    def scratch_slots(cls, config) -> int:
        return max(2 * config.learning.compose.pairs, config.genes.capacity)

    def adopt(self, slot: int, parent: int | None) -> None:
        self.fresh[slot] = True
        self.t[slot] = 0
        self.m[slot] = 0
        self.v[slot] = 0

    def learn(self, jobs: list[LearningJob], rng: np.random.Generator) -> list[LearningResult]:
        birth = self.settings.birth_steps
        results = []
        for job in jobs:
            fresh = bool(self.fresh[job.slot])
            if self.genes is None or not len(self.genes) or (birth is not None and not fresh):
                results.append(LearningResult(float("nan"), 0.0, accepted=False))
                continue
            spent = self._pick_genes(job) if fresh else 0.0
            # A newborn recombines in one go, so that later rules refine the finished mix.
            for _ in range(birth if birth is not None else 1):
                result = self._step(job, rng, spent)
                spent = result.tokens
            results.append(result)
        return results

    def _pick_genes(self, job: LearningJob) -> float:
        """Choose the genes that alone fit the job's batch best (and beat the bare host)."""
        slot, places = job.slot, self.settings.mix
        candidates = list(range(len(self.genes)))[: len(job.scratch)]
        ones = torch.ones(places, self.coef.shape[2])
        for k, gene in enumerate(candidates):
            self.genes.compose(self.population, job.scratch[k], [gene], ones, self.groups)
        scores, tokens = _fitness(
            self.host, self.population, [job], [[-1, *job.scratch[: len(candidates)]]]
        )
        fit = scores[0].mean(axis=1)
        order = [g for g in np.argsort(-fit[1:]) if fit[1 + g] > fit[0]][:places]
        self.chosen[slot] = -1
        self.coef[slot] = 0
        for k, g in enumerate(order):
            self.chosen[slot, k] = candidates[g]
        if order:
            self.coef[slot, 0] = 1.0  # start from the best gene alone
        self.fresh[slot] = False
        self._write(slot)
        return tokens[0]

    def _step(self, job: LearningJob, rng: np.random.Generator, spent: float) -> LearningResult:
        s = self.settings
        slot = job.slot
        if int((self.chosen[slot] >= 0).sum()) == 0:
            return LearningResult(float("nan"), spent, accepted=False)
        noise = torch.from_numpy(rng.standard_normal((s.pairs, *self.coef.shape[1:]))).float()
        noise *= (self.chosen[slot] >= 0).float()[None, :, None]  # unused places stay at zero
        slots = job.scratch[: 2 * s.pairs]
        for k in range(s.pairs):
            for sign, target in ((1.0, slots[2 * k]), (-1.0, slots[2 * k + 1])):
                trial = self.coef[slot] + sign * s.sigma * noise[k]
                self.genes.compose(
                    self.population, target, self.chosen[slot].tolist(), trial, self.groups
                )
        scores, tokens = _fitness(self.host, self.population, [job], [slots])
        fitness = scores[0].mean(axis=1)
        diff = torch.from_numpy(fitness[0::2] - fitness[1::2]).float()
        gradient = torch.einsum("k,kgb->gb", diff, noise) / (2 * s.pairs * s.sigma)
        self.t[slot] += 1
        b1, b2, t = 0.9, 0.999, float(self.t[slot])
        self.m[slot] = b1 * self.m[slot] + (1 - b1) * gradient
        self.v[slot] = b2 * self.v[slot] + (1 - b2) * gradient**2
        step = s.lr * (self.m[slot] / (1 - b1**t)) / ((self.v[slot] / (1 - b2**t)).sqrt() + 1e-8)
        self.coef[slot] += step  # ascent: the fitness is a log-likelihood
        self._write(slot)
        return LearningResult(float(fitness.mean()), spent + tokens[0])

    def _write(self, slot: int) -> None:
        self.genes.compose(
            self.population, slot, self.chosen[slot].tolist(), self.coef[slot], self.groups
        )

    def coefficients(self, slot: int) -> dict:
        """The genes an organelle mixes and its coefficients per block, for telemetry."""
        used = [(k, int(g)) for k, g in enumerate(self.chosen[slot]) if g >= 0]
        return {self.genes.genes[g].name: self.coef[slot, k].tolist() for k, g in used}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "chosen": self.chosen.clone(),
            "coef": self.coef.clone(),
            "m": self.m.clone(),
            "v": self.v.clone(),
            "t": self.t.clone(),
            "fresh": self.fresh.clone(),
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for key, value in tensors.items():
            setattr(self, key, value.clone())
