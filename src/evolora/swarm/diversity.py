"""The swarm's true diversity: distances between the configurations it actually evaluated, in
the unit cube (never a count of strategy names)."""

from __future__ import annotations

import numpy as np


def mean_pairwise_distance(points: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows, divided by sqrt(dim) so it lies in [0, 1]
    (uniform random points in d dimensions give about 0.41; identical points give 0)."""
    points = np.atleast_2d(points)
    n = len(points)
    if n < 2:
        return 0.0
    rows, cols = np.triu_indices(n, k=1)
    total = np.linalg.norm(points[rows] - points[cols], axis=1).mean()
    return float(total / np.sqrt(points.shape[1]))


def coverage(points: np.ndarray, bins: int) -> float:
    """Fraction of the `bins`^dim grid cells of the unit cube holding at least one point."""
    points = np.atleast_2d(points)
    index = np.clip((points * bins).astype(np.int64), 0, bins - 1)
    return len({row.tobytes() for row in index}) / float(bins) ** points.shape[1]
