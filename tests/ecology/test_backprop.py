import numpy as np
import torch
from ecology_helpers import mean_loglik

from evolora.ecology.config import BackpropConfig
from evolora.ecology.learning import LearningJob
from evolora.ecology.learning.backprop import Backprop
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid


def test_adam_raises_the_likelihood_and_touches_only_its_jobs(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 6, split="train")
    population = LoRAPopulation(tiny_host, n=3, rank=2, alpha=4.0, seed=0)
    rule = Backprop(BackpropConfig(lr=0.01), tiny_host, population)
    try:
        untouched = population.get_member(1)
        before = mean_loglik(tiny_host, population, 0, examples)
        for _ in range(10):
            results = rule.learn(
                [LearningJob(0, examples, []), LearningJob(2, examples[:3], [])],
                np.random.default_rng(0),
            )
        after = mean_loglik(tiny_host, population, 0, examples)
        assert after > before + 0.5
        assert results[0].fitness < after  # fitness is measured before the last step
        assert results[0].tokens > results[1].tokens > 0  # six examples cost more than three
        assert all(torch.equal(untouched[k][0], population.A[k][1]) for k in population.layer_names)
        assert all(torch.equal(untouched[k][1], population.B[k][1]) for k in population.layer_names)
        assert not any(population.A[k].requires_grad for k in population.layer_names)
        assert int(rule.adam.t[0]) == 10 and int(rule.adam.t[1]) == 0
    finally:
        population.detach()
    assert all(p.grad is None for p in tiny_host.model.parameters())


def test_adam_matches_torch_adam_on_one_slot(tiny_host):
    """Per-slot Adam is torch's Adam applied to that slot's factors alone."""
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 4, split="train")
    population = LoRAPopulation(tiny_host, n=2, rank=2, alpha=4.0, seed=0)
    rule = Backprop(BackpropConfig(lr=0.01), tiny_host, population)
    try:
        start = {k: (a.clone(), b.clone()) for k, (a, b) in population.get_member(1).items()}
        for _ in range(3):
            rule.learn([LearningJob(1, examples, [])], np.random.default_rng(0))
        ours = population.get_member(1)
        # Replay with torch.optim.Adam on leaf copies of slot 1.
        population.set_member(1, start)
        params = [t.clone().requires_grad_(True) for k in population.layer_names for t in start[k]]
        optimizer = torch.optim.Adam(params, lr=0.01)
        from evolora.ecology.learning import answer_logprobs

        for _ in range(3):
            with torch.no_grad():
                population.set_member(
                    1,
                    {
                        k: (params[2 * i], params[2 * i + 1])
                        for i, k in enumerate(population.layer_names)
                    },
                )
            from evolora.ecology.learning.backprop import factor_gradients

            with factor_gradients(population) as _:
                loss = -answer_logprobs(tiny_host, population, examples, [1] * 4).mean()
                loss.backward()
                grads = [
                    (population.A[k].grad[1], population.B[k].grad[1])
                    for k in population.layer_names
                ]
            for i, (ga, gb) in enumerate(grads):
                params[2 * i].grad, params[2 * i + 1].grad = ga.clone(), gb.clone()
            optimizer.step()
        for i, k in enumerate(population.layer_names):
            assert torch.allclose(ours[k][0], params[2 * i].detach(), atol=1e-6)
            assert torch.allclose(ours[k][1], params[2 * i + 1].detach(), atol=1e-6)
    finally:
        population.detach()
