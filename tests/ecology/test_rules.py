"""Every registered learning rule, on one small seeded problem: it raises the answers' likelihood,
touches only the slots it was given, and sends no gradient into the host."""

import numpy as np
import pytest
import torch
from ecology_helpers import mean_loglik

from evolora.ecology.config import (
    BackpropConfig,
    ComposeConfig,
    ESConfig,
    HebbianConfig,
)
from evolora.ecology.genes import GenePool, gene_from_slot
from evolora.ecology.learning import RULES, LearningJob
from evolora.ecology.learning.backprop import Backprop
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid

SETTINGS = {
    "backprop": (BackpropConfig(lr=0.01), 10, 0.5),
    "es": (ESConfig(pairs=4, sigma=0.1, lr=0.01, keep_if_better=False), 25, 0.3),
    "hebbian": (HebbianConfig(lr=0.1), 25, 0.1),
    "compose": (ComposeConfig(mix=2, pairs=4, sigma=0.1, lr=0.1), 10, 0.5),
}


def _useful_and_harmful_genes(host, examples) -> GenePool:
    """A pool with one gene trained on the examples and one random, harmful gene."""
    population = LoRAPopulation(host, n=2, rank=2, alpha=4.0, seed=1)
    try:
        trainer = Backprop(BackpropConfig(lr=0.01), host, population)
        for _ in range(8):
            trainer.learn([LearningJob(0, examples, [])], np.random.default_rng(0))
        generator = torch.Generator().manual_seed(5)
        for name in population.layer_names:
            population.B[name][1] = torch.randn(population.B[name][1].shape, generator=generator)
        pool = GenePool(rank=2, capacity=4)
        pool.add(gene_from_slot(population, 1, 2, "harmful", "import", -1))
        pool.add(gene_from_slot(population, 0, 2, "useful", "import", -1))
    finally:
        population.detach()
    return pool


def test_every_registered_rule_is_covered_here():
    assert set(RULES) == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_rule_raises_the_likelihood_of_the_answers_it_learns(tiny_host, name):
    settings, steps, margin = SETTINGS[name]
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 6, split="train")
    pool = _useful_and_harmful_genes(tiny_host, examples) if name == "compose" else None
    population = LoRAPopulation(tiny_host, n=12, rank=4, alpha=8.0, seed=0)
    rule = RULES[name](settings, tiny_host, population, pool)
    try:
        untouched = population.get_member(1)
        rule.adopt(0, None)
        before = mean_loglik(tiny_host, population, 0, examples)
        rng = np.random.default_rng(1)
        for _ in range(steps):
            (result,) = rule.learn([LearningJob(0, examples, list(range(2, 12)))], rng)
            assert result.tokens > 0
        after = mean_loglik(tiny_host, population, 0, examples)
        assert after > before + margin
        for k in population.layer_names:
            assert torch.equal(untouched[k][0], population.A[k][1])
            assert torch.equal(untouched[k][1], population.B[k][1])
    finally:
        population.detach()
    assert all(p.grad is None for p in tiny_host.model.parameters())
    assert rule.gradient_free == (name != "backprop")


def test_compose_picks_the_useful_gene_and_tunes_its_mix_beyond_it(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 6, split="train")
    pool = _useful_and_harmful_genes(tiny_host, examples)
    population = LoRAPopulation(tiny_host, n=12, rank=4, alpha=8.0, seed=0)
    rule = RULES["compose"](
        ComposeConfig(mix=2, pairs=4, sigma=0.1, lr=0.1), tiny_host, population, pool
    )
    try:
        rule.adopt(0, None)
        job = LearningJob(0, examples, list(range(2, 12)))
        rule.learn([job], np.random.default_rng(1))
        assert list(rule.coefficients(0)) == ["useful"]  # the harmful gene does not beat the host
        alone = mean_loglik(tiny_host, population, 0, examples)  # after one step from weight 1
        for _ in range(15):
            rule.learn([job], np.random.default_rng(2))
        assert mean_loglik(tiny_host, population, 0, examples) > alone
        state = rule.state_tensors()
        assert int(state["t"][0]) == 16 and not bool(state["fresh"][0])
    finally:
        population.detach()


def test_compose_with_birth_steps_recombines_a_newborn_once(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 6, split="train")
    pool = _useful_and_harmful_genes(tiny_host, examples)
    population = LoRAPopulation(tiny_host, n=12, rank=4, alpha=8.0, seed=0)
    settings = ComposeConfig(mix=2, pairs=2, birth_steps=3)
    rule = RULES["compose"](settings, tiny_host, population, pool)
    try:
        rule.adopt(0, None)
        job = LearningJob(0, examples, list(range(2, 12)))
        results = [rule.learn([job], np.random.default_rng(k))[0] for k in range(2)]
        assert results[0].accepted and int(rule.t[0]) == 3
        assert not results[1].accepted and results[1].tokens == 0.0 and int(rule.t[0]) == 3
        rule.adopt(0, None)  # a new occupant recombines again
        assert rule.learn([job], np.random.default_rng(5))[0].accepted
    finally:
        population.detach()
