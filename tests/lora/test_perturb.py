"""Seeded low-rank perturbations: bit-exact regeneration, antithetic pairs, and ES that learns."""

from __future__ import annotations

import pytest
import torch
from lora_models import randomize, tiny_llama

from evolora.errors import EvoloraError
from evolora.lora import LoRAPopulation


@pytest.mark.parametrize("noise_rank", [1, 3])
def test_noise_regenerates_bit_identically_and_is_low_rank(noise_rank):
    pop = LoRAPopulation(tiny_llama(), n=2, rank=4, noise_rank=noise_rank)
    first, again, other = pop.noise(11), pop.noise(11), pop.noise(12)
    for name in pop.layer_names:
        for t in range(2):
            assert torch.equal(first[name][t], again[name][t])
            assert not torch.equal(first[name][t], other[name][t])
            assert torch.linalg.matrix_rank(first[name][t], rtol=1e-5) == noise_rank
    stacked = torch.cat([first[k][1].flatten() for k in pop.layer_names])
    assert 0.8 < float(stacked.std()) < 1.2  # unit-variance entries


def test_perturb_writes_antithetic_pairs_from_the_seeds(population):
    theta = population.get_member(0)
    population.perturb(0, [0, 1, 2, 3], seeds=[5, 9], sigma=0.1)
    for k, seed in enumerate([5, 9]):
        eps = population.noise(seed)
        for name, (a, b) in theta.items():
            assert torch.equal(population.A[name][2 * k], a + 0.1 * eps[name][0])
            assert torch.equal(population.A[name][2 * k + 1], a - 0.1 * eps[name][0])
            assert torch.equal(population.B[name][2 * k + 1], b - 0.1 * eps[name][1])


def test_es_update_is_the_weighted_sum_of_the_noises(population):
    theta = population.get_member(1)
    population.es_update(1, seeds=[3, 4, 8], weights=[0.5, -2.0, 1.0], sigma=0.05, lr=0.3)
    noises = [population.noise(s) for s in (3, 4, 8)]
    for name, factors in theta.items():
        for t, table in enumerate((population.A, population.B)):
            step = sum(w * n[name][t] for w, n in zip([0.5, -2.0, 1.0], noises, strict=True))
            expected = factors[t] + 0.3 / (3 * 0.05) * step
            assert torch.allclose(table[name][1], expected, atol=1e-5)


def test_perturb_and_es_update_reject_bad_input(population):
    with pytest.raises(EvoloraError, match="2 seeds for 3 dst_ids"):
        population.perturb(0, [1, 2, 3], seeds=[1, 2], sigma=0.1)
    with pytest.raises(EvoloraError, match="seeds must be integers"):
        population.perturb(0, [1, 2], seeds=[-1], sigma=0.1)
    with pytest.raises(EvoloraError, match="one weight per seed"):
        population.es_update(0, seeds=[1, 2], weights=[1.0], sigma=0.1, lr=0.1)


@pytest.mark.slow
def test_es_on_the_population_learns_to_match_a_target_adapter():
    """Antithetic low-rank ES, evaluated in one batched forward per step, with no host gradient,
    pulls member 0 towards the outputs of a hidden target adapter."""
    model = tiny_llama(seed=4)
    pairs, prompts, sigma, lr = 8, 2, 0.05, 0.02
    pop = LoRAPopulation(model, n=2 * pairs + 2, rank=1, alpha=1, targets=["v_proj"])
    target = pop.n - 1
    randomize(pop, seed=9, scale=0.3)
    pop.reset_member(0)
    tokens = torch.randint(1, 61, (prompts, 8), generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), pop.route([target] * prompts):
        wanted = model(tokens).logits

    def losses(members: list[int]) -> torch.Tensor:
        ids = [m for m in members for _ in range(prompts)]
        with torch.no_grad(), pop.route(ids):
            logits = model(tokens.repeat(len(members), 1)).logits
        err = (logits - wanted.repeat(len(members), 1, 1)) ** 2
        return err.view(len(members), -1).mean(dim=1)

    start = float(losses([0])[0])
    for step in range(40):
        seeds = [step * pairs + k for k in range(pairs)]
        pop.perturb(0, list(range(1, 2 * pairs + 1)), seeds, sigma)
        fitness = -losses(list(range(1, 2 * pairs + 1)))
        diff = fitness[0::2] - fitness[1::2]
        pop.es_update(0, seeds, diff / (diff.std() + 1e-12), sigma, lr)
    end = float(losses([0])[0])
    assert end < 0.25 * start, (start, end)
