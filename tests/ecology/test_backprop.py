import numpy as np
import torch
from ecology_helpers import mean_loglik

from evolora.ecology.backprop import BackpropJob, backprop_step
from evolora.ecology.config import BackpropConfig
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid


def test_sign_descent_raises_the_likelihood_and_touches_only_its_jobs(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 6, split="train")
    population = LoRAPopulation(tiny_host, n=3, rank=2, alpha=4.0, seed=0)
    try:
        untouched = population.get_member(1)
        before = mean_loglik(tiny_host, population, 0, examples)
        for _ in range(10):
            fitness = backprop_step(
                tiny_host,
                population,
                [BackpropJob(0, examples), BackpropJob(2, examples[:3])],
                BackpropConfig(lr=0.01),
            )
        after = mean_loglik(tiny_host, population, 0, examples)
        assert after > before + 0.5
        assert fitness[0] < after  # fitness is measured before the last step
        assert all(torch.equal(untouched[k][0], population.A[k][1]) for k in population.layer_names)
        assert all(torch.equal(untouched[k][1], population.B[k][1]) for k in population.layer_names)
        assert not any(population.A[k].requires_grad for k in population.layer_names)
    finally:
        population.detach()
    assert all(p.grad is None for p in tiny_host.model.parameters())
