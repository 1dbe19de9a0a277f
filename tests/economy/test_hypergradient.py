"""The hypergradient signal and the lr that follows it: by hand, on a quadratic whose best step
size is known, the evidence gate, and inside a steered job (the next optimizer step gets
lr x exp(gain x signal / rms) when the recent signals back it)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from economy_helpers import tiny_config

from evolora.economy.gradients import GradStats, hypergradient_signal
from evolora.economy.loop import Job


def test_signal_by_hand():
    g = torch.tensor([1.0, 0.0])
    assert hypergradient_signal(g, torch.tensor([-2.0, 0.0])) == pytest.approx(1.0)
    assert hypergradient_signal(g, torch.tensor([3.0, 0.0])) == pytest.approx(-1.0)
    assert hypergradient_signal(g, torch.tensor([0.0, 1.0])) == pytest.approx(0.0)
    assert hypergradient_signal(g, torch.zeros(2)) == 0.0


def test_consistency_and_normalisation_by_hand():
    stats = GradStats(window=4)
    for value in (0.1, 0.3, 0.2):
        stats.observe_hyper(value)
    spread = torch.tensor([0.1, 0.3, 0.2]).std().item() / math.sqrt(3)
    assert stats.consistency == pytest.approx(0.2 / spread)
    assert stats.alignment == pytest.approx(0.2)
    assert stats.normalised(0.1) == pytest.approx(0.1 / math.sqrt((0.01 + 0.09 + 0.04) / 3))
    assert GradStats().normalised(0.5) == 0.0


def test_the_evidence_gate_by_hand():
    stats = GradStats(window=8)
    for value in (0.2, 0.3, 0.25, 0.35):
        stats.observe_hyper(value)
    assert stats.directional_t(0.1) == pytest.approx(stats.consistency) and stats.consistency > 2
    assert stats.supported(0.1, 2.0) == pytest.approx(stats.normalised(0.1))
    assert stats.supported(-0.1, 2.0) == 0.0  # against the recent signals: the lr holds
    noisy = GradStats(window=8)
    for value in (0.3, -0.2, 0.1, -0.25):
        noisy.observe_hyper(value)
    assert noisy.consistency < 2
    assert noisy.supported(0.3, 2.0) == noisy.supported(-0.3, 2.0) == 0.0
    assert GradStats().supported(0.5, 0.0) == 0.0  # no signals yet


def test_the_multiplicative_rule_finds_the_best_step_size_of_a_quadratic():
    # Gradient descent on 1/2 |x|^2: the step size 1 reaches the minimum in one step; below it the
    # new gradient still points along the last step (signal +1), above it the step overshot (-1).
    x = torch.tensor([3.0, -1.0])
    lr, gain, previous_update, stats = 0.01, 0.3, None, GradStats()
    trail = []
    for _ in range(60):
        grad = x.clone()
        if previous_update is not None:
            stats.observe_hyper(hypergradient_signal(grad, previous_update))
            lr *= math.exp(gain * stats.supported(stats.hyper[-1], 2.0))
        previous_update = -lr * grad
        x = x + previous_update
        if x.norm() < 1e-30:
            x = torch.tensor([3.0, -1.0])  # keep the signal defined once the minimum is hit
        trail.append(lr)
    assert trail[0] < 0.02
    assert all(0.5 < value < 2.0 for value in trail[-10:])


@pytest.mark.parametrize("evidence", [0.0, 1.0])
def test_the_next_step_gets_the_lr_the_backed_signal_and_gain_give(host, evidence):
    config = tiny_config(
        agents={"roles": ["lr"], "decide_every": 1000}, knobs={"lr_evidence": evidence}
    )
    job = Job(config, host=host)
    seen = []
    original = job.optimizer.step

    def step(*args, **kwargs):
        seen.append(job.optimizer.param_groups[0]["lr"])
        return original(*args, **kwargs)

    job.optimizer.step = step
    for _ in range(8):
        job.step()
    h = job.steering.economy.grads.hyper
    gain, lr = job.config.knobs.lr_gain, job.config.knobs.lr
    assert len(h) == 7  # the first step has no previous update to compare with
    replay, expected = GradStats(window=job.steering.economy.grads.window), [lr, lr]
    for signal in h:
        replay.observe_hyper(signal)
        lr *= math.exp(gain * replay.supported(signal, evidence))
        expected.append(lr)
    assert seen == pytest.approx(expected[:8])
    assert job.steering.knobs.lr == pytest.approx(expected[8])
    assert evidence > 0 or any(a != b for a, b in itertools.pairwise(seen))


def test_without_the_lr_agent_the_lr_stays(host):
    job = Job(tiny_config(agents={"roles": ["dropout"], "decide_every": 1000}), host=host)
    for _ in range(3):
        job.step()
    assert len(job.steering.economy.grads.hyper) == 2
    assert job.steering.knobs.lr == job.config.knobs.lr
