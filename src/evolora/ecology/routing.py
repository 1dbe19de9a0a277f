"""Thompson-sampling routing of organelles to the cells the bandit chose."""

from __future__ import annotations

import numpy as np


def thompson_route(
    successes: np.ndarray, failures: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For each organelle (row), the column of the cell with the highest Beta(s+1, f+1) draw.

    `successes` and `failures` are [organelles, cells] counts restricted to the chosen cells.
    """
    draws = rng.beta(successes + 1.0, failures + 1.0)
    return np.argmax(draws, axis=1)
