import numpy as np
import pytest
import torch
from ecology_helpers import mean_loglik

from evolora.ecology.config import ESConfig, HebbianConfig
from evolora.ecology.learning import LearningJob, answer_logprobs
from evolora.ecology.learning.backprop import factor_gradients
from evolora.ecology.learning.es import es_step
from evolora.ecology.learning.hebbian import hebbian_step
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid


def test_es_raises_the_likelihood_of_the_answers_without_host_gradients(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 6, split="train")
    config = ESConfig(pairs=4, sigma=0.1, lr=0.01)
    population = LoRAPopulation(tiny_host, n=9, rank=2, alpha=4.0, seed=0)
    try:
        before = mean_loglik(tiny_host, population, 0, examples)
        rng = np.random.default_rng(1)
        for _ in range(25):
            es_step(
                tiny_host, population, [LearningJob(0, examples, list(range(1, 9)))], config, rng
            )
        after = mean_loglik(tiny_host, population, 0, examples)
    finally:
        population.detach()
    assert all(p.grad is None for p in tiny_host.model.parameters())
    assert after > before + 0.5


def test_hebbian_node_perturbation_raises_the_likelihood_of_the_answers(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 6, split="train")
    population = LoRAPopulation(tiny_host, n=1, rank=2, alpha=4.0, seed=0)
    try:
        before = mean_loglik(tiny_host, population, 0, examples)
        rng = np.random.default_rng(1)
        for _ in range(25):
            hebbian_step(
                tiny_host,
                population,
                [LearningJob(0, examples * 4, [])],
                HebbianConfig(lr=0.1),
                rng,
            )
        after = mean_loglik(tiny_host, population, 0, examples)
    finally:
        population.detach()
    assert after > before + 0.2


def test_a_hebbian_step_points_along_the_true_gradient(tiny_host):
    """Many noisy copies of one example: the reward-weighted traces estimate the gradient of its
    answer log-likelihood w.r.t. B (a random direction would score about 0.03)."""
    example = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 1, split="train")
    batch = example * 256
    population = LoRAPopulation(tiny_host, n=1, rank=2, alpha=4.0, seed=0)

    def flat_b(of_gradient: bool = False) -> torch.Tensor:
        tables = [population.B[k] for k in population.layer_names]
        return torch.cat([(t.grad if of_gradient else t)[0].flatten() for t in tables])

    try:
        with factor_gradients(population):
            answer_logprobs(tiny_host, population, batch, [0] * len(batch)).mean().backward()
            gradient = flat_b(of_gradient=True)
        before = flat_b()
        hebbian_step(
            tiny_host,
            population,
            [LearningJob(0, batch, [])],
            HebbianConfig(),
            np.random.default_rng(1),
        )
        after = flat_b()
    finally:
        population.detach()
    assert float(torch.nn.functional.cosine_similarity(after - before, gradient, dim=0)) > 0.15


def test_hebbian_updates_only_the_organelles_being_trained(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 4, split="train")
    population = LoRAPopulation(tiny_host, n=3, rank=2, alpha=4.0, seed=0)
    try:
        for name in population.layer_names:
            population.B[name].normal_(0, 0.1)
        untouched = population.get_member(1)
        hebbian_step(
            tiny_host,
            population,
            [LearningJob(0, examples, []), LearningJob(2, examples, [])],
            HebbianConfig(),
            np.random.default_rng(0),
        )
        assert all(torch.equal(untouched[k][0], population.A[k][1]) for k in population.layer_names)
        assert any(
            not torch.equal(untouched[k][1], population.B[k][0]) for k in population.layer_names
        )
    finally:
        population.detach()


def test_answer_logprobs_match_the_hosts_loglik_per_token(tiny_host):
    examples = TaskGrid(["math"], [1, 2]).sample_batch(np.random.default_rng(1), 5, split="train")
    population = LoRAPopulation(tiny_host, n=2, rank=2, alpha=4.0, seed=0)
    try:
        for name in population.layer_names:
            population.B[name].normal_(0, 0.1)
        ours = answer_logprobs(tiny_host, population, examples, [1] * len(examples))
        assert float(ours.mean()) == pytest.approx(
            mean_loglik(tiny_host, population, 1, examples), abs=1e-5
        )
    finally:
        population.detach()
