"""The supervisor's global memory map: a grid over the unit cube of where evaluations fell and
how they scored (`bins` cells per coordinate, stored sparsely)."""

from __future__ import annotations

import math

import numpy as np


class Heatmap:
    """Counts and best loss per grid cell of the unit cube."""

    def __init__(self, dim: int, bins: int) -> None:
        self.dim, self.bins = dim, bins
        self._weights = (
            bins ** np.arange(dim, dtype=object)
            if dim * math.log2(bins) > 62
            else (bins ** np.arange(dim, dtype=np.int64))
        )
        self.counts: dict[int, int] = {}
        self.best: dict[int, float] = {}

    def cells(self, points: np.ndarray) -> list[int]:
        """The cell key of each point (rows of `points`)."""
        index = np.clip((np.atleast_2d(points) * self.bins).astype(np.int64), 0, self.bins - 1)
        return [int(key) for key in index @ self._weights]

    def add(self, u: np.ndarray, loss: float) -> None:
        """Record one evaluation."""
        key = self.cells(u)[0]
        self.counts[key] = self.counts.get(key, 0) + 1
        if loss < self.best.get(key, math.inf):
            self.best[key] = loss

    def count(self, points: np.ndarray) -> np.ndarray:
        """How many evaluations fell in each point's cell."""
        return np.array([self.counts.get(key, 0) for key in self.cells(points)], dtype=float)

    def least_visited(self, rng: np.random.Generator, candidates: int = 64) -> np.ndarray:
        """A point of the cube in (nearly) the least-visited cell among random candidates."""
        points = rng.random((candidates, self.dim))
        return points[int(np.argmin(self.count(points) + rng.random(candidates) * 0.5))]

    @property
    def visited(self) -> int:
        """Number of cells holding at least one evaluation."""
        return len(self.counts)

    def coverage(self) -> float:
        """Visited cells over all cells."""
        return self.visited / float(self.bins) ** self.dim
