"""Multi-objective swarms on a problem whose Pareto set is known: x in [0, 1]."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evolora.errors import EvoloraError
from evolora.swarm import Swarm, SwarmConfig
from evolora.swarm.pareto import front

SPACE = {
    "x": {"kind": "float", "low": -2.0, "high": 3.0},
    "y": {"kind": "float", "low": -1.0, "high": 1.0},
}


def two_bowls(params: dict) -> tuple[float, float]:
    """(value, cost): every x in [0, 1] with y = 0 is Pareto-optimal."""
    x, y = params["x"], params["y"]
    return x**2 + y**2, (x - 1) ** 2 + y**2


def test_front_of_known_points():
    values = [[1, 5], [2, 2], [5, 1], [3, 3], [1, 6]]
    assert front(values, [1, 1]) == [0, 1, 2]
    assert front(values, [-1, -1]) == [2, 3, 4]


def test_teams_spread_along_the_pareto_front():
    swarm = Swarm(SPACE, SwarmConfig(seed=0, directions=["minimize", "minimize"]))
    swarm.optimize(two_bowls, 400)
    best = swarm.pareto_front()
    xs = np.array([t.params["x"] for t in best])
    ys = np.array([t.params["y"] for t in best])
    gap = np.hypot(np.clip(xs, 0, 1) - xs, ys)  # distance to the true Pareto set
    assert len(best) >= 10 and gap.max() < 0.15
    value, cost = np.array([t.values for t in best]).T
    assert value.min() < 0.01 and cost.min() < 0.01  # both ends of the front are reached
    assert xs.max() - xs.min() > 0.8
    assert all(t.record()["values"] == t.values for t in best)


def test_multi_objective_input_is_checked():
    swarm = Swarm(SPACE, SwarmConfig(seed=0, directions=["minimize", "maximize"]))
    trial = swarm.ask()
    with pytest.raises(EvoloraError, match="needs 2 value"):
        swarm.tell(trial, 1.0)
    swarm.tell(trial, (1.0, math.nan))
    assert trial.state == "failed" and trial.values is None
    with pytest.raises(ValueError, match="two or more objectives"):
        SwarmConfig(directions=["minimize"])
    with pytest.raises(EvoloraError, match="multi-objective"):
        Swarm(SPACE).pareto_front()
