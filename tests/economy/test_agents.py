"""Agents: gradient analysis biases their choices, risk follows success, moves are as documented."""

from __future__ import annotations

import numpy as np
import pytest
from economy_helpers import tiny_config

from evolora.economy.agents import MOVES, heuristic, may_prune, proposed_value, remember
from evolora.economy.config import AgentsConfig, Role
from evolora.economy.controller import Economy
from evolora.economy.gradients import GradStats
from evolora.economy.knobs import Knobs


def _knobs(**kw) -> Knobs:
    values = {
        "lr": 1e-3,
        "weight_decay": 0.0,
        "dropout": 0.1,
        "grad_clip": 1.0,
        "accumulation": 1,
        "rank": 4,
        "mix": [0.5, 0.5],
    }
    values.update(kw)
    return Knobs(**values)


def _grads(norms) -> GradStats:
    stats = GradStats(window=len(norms))
    for n in norms:
        stats.observe(n)
    return stats


def test_gradient_norm_trend_and_median_enter_the_choice():
    rising, falling = _grads([1, 2, 4, 8]), _grads([8, 4, 2, 1])
    assert rising.trend > 0 > falling.trend
    moves = np.asarray(MOVES[Role.LR])
    eta_rising = heuristic(Role.LR, _knobs(), rising, 2, weight=1.0)
    eta_falling = heuristic(Role.LR, _knobs(), falling, 2, weight=1.0)
    assert eta_rising[moves < 0].min() > eta_rising[moves > 0].max()  # rising: lower the lr
    assert eta_falling[moves > 0].min() > eta_falling[moves < 0].max()
    big = heuristic(Role.GRAD_CLIP, _knobs(grad_clip=0.1), _grads([2, 2, 2, 2]), 2, 1.0)
    assert big[1] > big[0]  # norms above the clip: raise it toward the median
    small = heuristic(Role.GRAD_CLIP, _knobs(grad_clip=10.0), _grads([2, 2, 2, 2]), 2, 1.0)
    assert small[0] > small[1]
    assert heuristic(Role.DROPOUT, _knobs(), rising, 2, 1.0) == pytest.approx([1, 1])
    assert _grads([1, 1, 1]).variation == 0 and _grads([1, 3]).variation == pytest.approx(0.5)


def test_risk_appetite_follows_recent_success():
    config = AgentsConfig(risk_rate=0.5)
    from evolora.economy.agents import Agent

    agent = Agent(Role.LR, 10.0, 0.6, np.ones(4))
    for _ in range(6):
        remember(agent, +0.01, config)
    assert agent.risk == pytest.approx(config.risk_bounds.high, abs=0.02)
    for _ in range(config.history + 6):
        remember(agent, -0.01, config)
    assert agent.risk == pytest.approx(config.risk_bounds.low, abs=0.02)
    assert len(agent.credits) == config.history


def test_moves_are_as_documented():
    knobs = _knobs()
    gain = _knobs(lr_gain=0.1)
    assert proposed_value(Role.LR, 3, gain, 1.0, 2.0) == pytest.approx(0.4)
    assert proposed_value(Role.LR, 0, gain, 0.5, 2.0) == pytest.approx(0.05)
    assert proposed_value(Role.WEIGHT_DECAY, 1, knobs, 1.0, 2.0) == 0.01
    assert proposed_value(Role.WEIGHT_DECAY, 0, _knobs(weight_decay=0.0015), 1.0, 2.0) == 0.0
    assert proposed_value(Role.DROPOUT, 1, knobs, 1.0, 2.0) == pytest.approx(0.15)
    assert proposed_value(Role.ACCUMULATION, 1, knobs, 1.0, 2.0) == 2
    assert proposed_value(Role.RANK, 0, knobs, 1.0, 2.0) == 2
    assert proposed_value(Role.DATA_MIX, 1, knobs, 1.0, 2.0) == pytest.approx([0.5, 1.0])


def _rank_moves(economy, step: int, rounds: int = 40) -> set[int]:
    """The rank changes the rank agent proposes over `rounds` decisions at micro-batch `step`."""
    moves = set()
    for _ in range(rounds):
        economy.knobs.rank = 4
        economy.agents["rank"].tokens, economy.agents["rank"].risk = 5.0, 1.0
        for proposal in economy.decide(step):
            moves.add(proposal.applied - proposal.before)
    return moves


def test_the_rank_agent_prunes_only_while_a_pruned_adapter_has_time_to_recover():
    assert may_prune(10, 60, 1.0) and may_prune(30, 60, 1.0) and not may_prune(31, 60, 1.0)
    assert may_prune(59, 60, 0.0)  # 0: always
    config = tiny_config(workload={"steps": 60}, agents={"roles": ["rank"], "prune_recovery": 1.0})
    economy = Economy(config, ["g"])
    assert _rank_moves(economy, 20) == {-2, 2}  # 40 micro-batches ahead of 20 trained: both
    assert _rank_moves(economy, 40) == {2}  # 20 ahead of 40 trained: growth only
