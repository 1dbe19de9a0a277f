"""Multi-objective search (e.g. value and cost): each team minimises its own weighting of the
objectives, so the teams spread along the Pareto front, and the front is read off the trials.

A team's loss is the augmented Chebyshev scalarisation of ParEGO (Knowles 2006):
max_i w_i f_i + 0.05 sum_i w_i f_i, on objectives normalised by the range seen so far, with a
weight vector fixed per team (drawn from the run's seed and the team's id).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AUGMENT = 0.05


class Scalarizer:
    """Turns a trial's objective values into one loss for the team that asked for it."""

    def __init__(self, signs: Sequence[float], seed: int) -> None:
        self.signs = np.asarray(signs, dtype=float)
        self.seed = seed
        self.low = np.full(len(self.signs), np.inf)
        self.high = np.full(len(self.signs), -np.inf)

    def weights(self, team: int | None) -> np.ndarray:
        """The team's weight vector (equal weights for a trial without a team)."""
        if team is None:
            return np.full(len(self.signs), 1.0 / len(self.signs))
        return np.random.default_rng([self.seed, team]).dirichlet(np.ones(len(self.signs)))

    def loss(self, values: Sequence[float], team: int | None) -> float:
        """The team's scalarised loss of `values` (every objective as minimised)."""
        f = self.signs * np.asarray(values, dtype=float)
        self.low, self.high = np.minimum(self.low, f), np.maximum(self.high, f)
        scaled = (f - self.low) / np.maximum(self.high - self.low, 1e-12)
        weighted = self.weights(team) * scaled
        return float(weighted.max() + AUGMENT * weighted.sum())


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether `a` is no worse than `b` everywhere and better somewhere (both minimised)."""
    return bool(np.all(a <= b) and np.any(a < b))


def front(values: Sequence[Sequence[float]], signs: Sequence[float]) -> list[int]:
    """Indices of the non-dominated rows of `values` under `signs` (+1 minimise, -1 maximise)."""
    f = np.asarray(values, dtype=float) * np.asarray(signs, dtype=float)
    return [i for i in range(len(f)) if not any(dominates(f[j], f[i]) for j in range(len(f)))]
