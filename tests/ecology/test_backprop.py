import itertools

import numpy as np
import pytest
import torch
from ecology_helpers import mean_loglik

from evolora.ecology.config import BackpropConfig
from evolora.ecology.learning import LearningJob
from evolora.ecology.learning.backprop import Backprop, scheduled_lr
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


def test_cosine_schedule_warms_up_peaks_and_decays_to_zero():
    settings = BackpropConfig(lr=0.01, schedule="cosine", warmup=0.1)
    assert scheduled_lr(settings, None) == 0.01  # outside a run: the peak
    assert scheduled_lr(settings, 0.05) == pytest.approx(0.005 * 0.5 * (1 + np.cos(np.pi * 0.05)))
    assert scheduled_lr(settings, 0.5) == pytest.approx(0.005)  # cosine half-way down
    assert scheduled_lr(settings, 1.0) == pytest.approx(0.0, abs=1e-12)
    rates = [scheduled_lr(settings, p) for p in np.linspace(0.1, 1.0, 50)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    constant = BackpropConfig(lr=0.01)
    assert {scheduled_lr(constant, p) for p in (0.0, 0.5, 1.0)} == {0.01}


def test_a_family_rate_replaces_the_peak_for_that_familys_organelles_only():
    settings = BackpropConfig(lr=0.01, schedule="cosine", family_lr={"logic": 0.002})
    assert scheduled_lr(settings, 0.5, "logic") == pytest.approx(0.001)
    assert scheduled_lr(settings, 0.5, "math") == pytest.approx(0.005)
    assert scheduled_lr(settings, 0.5, None) == pytest.approx(0.005)  # a generalist
    assert scheduled_lr(settings, None, "logic") == 0.002


def test_a_late_step_under_the_cosine_schedule_moves_the_adapter_less(tiny_host):
    examples = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(0), 4, split="train")
    population = LoRAPopulation(tiny_host, n=2, rank=2, alpha=4.0, seed=0)
    rule = Backprop(BackpropConfig(lr=0.01, schedule="cosine"), tiny_host, population)
    try:
        start = [population.get_member(slot) for slot in (0, 1)]
        rule.learn(
            [LearningJob(0, examples, [], progress=0.5), LearningJob(1, examples, [], 0.99)],
            np.random.default_rng(0),
        )
        moved = [
            sum(
                float((population.B[k][slot] - start[slot][k][1]).abs().sum())
                for k in population.layer_names
            )
            for slot in (0, 1)
        ]
        assert moved[1] < 0.01 * moved[0]  # the rate at 0.99 is 0.05 % of the rate at 0.5
    finally:
        population.detach()
