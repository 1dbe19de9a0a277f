"""Hierarchical swarm hyperparameter search: agents explore regions, managers keep a meta-memory
and reassign stuck agents, a supervisor keeps a global heatmap, separates overlapping teams,
clones successful ones and re-seeds when diversity falls.

    from evolora.swarm import Swarm
    swarm = Swarm({"lr": {"kind": "float", "low": 1e-5, "high": 1e-1, "log": True}})
    best = swarm.optimize(lambda p: (p["lr"] - 3e-3) ** 2, n_trials=100)
"""

from __future__ import annotations

from evolora.swarm.config import SwarmConfig
from evolora.swarm.space import Space
from evolora.swarm.study import Swarm, Trial

__all__ = ["Space", "Swarm", "SwarmConfig", "SwarmSampler", "Trial"]


def __getattr__(name: str):
    if name == "SwarmSampler":  # optuna is imported only when the sampler is used
        from evolora.swarm.optuna_sampler import SwarmSampler

        return SwarmSampler
    raise AttributeError(f"module 'evolora.swarm' has no attribute {name!r}")
