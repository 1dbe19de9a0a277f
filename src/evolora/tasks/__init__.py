"""Tasks: generated families (math, logic, sorting, sequence, json_repair), scoring, splits,
the task grid and user datasets.

    from evolora.tasks import TaskGrid, score
    grid = TaskGrid.named("default")
    example = grid.sample(np.random.default_rng(0), split="holdout")
    score(example, completion)  # float in [0, 1]
"""

from __future__ import annotations

from evolora.tasks import families as _families  # noqa: F401  (registers the built-in families)
from evolora.tasks.base import (
    DIFFICULTIES,
    MAX_DIFFICULTY,
    MIN_DIFFICULTY,
    Example,
    TaskFamily,
    check_difficulty,
)
from evolora.tasks.datasets import load_dataset
from evolora.tasks.grid import TaskGrid
from evolora.tasks.registry import family_names, get_family, register_family
from evolora.tasks.scorers import SCORERS, first_line
from evolora.tasks.scoring import score, score_example
from evolora.tasks.splits import HOLDOUT_FRACTION, SPLITS, split_of

__all__ = [
    "DIFFICULTIES",
    "HOLDOUT_FRACTION",
    "MAX_DIFFICULTY",
    "MIN_DIFFICULTY",
    "SCORERS",
    "SPLITS",
    "Example",
    "TaskFamily",
    "TaskGrid",
    "check_difficulty",
    "family_names",
    "first_line",
    "get_family",
    "load_dataset",
    "register_family",
    "score",
    "score_example",
    "split_of",
]
