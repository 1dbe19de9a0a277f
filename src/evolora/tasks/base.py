"""The task contract: an `Example`, the `TaskFamily` base class and the difficulty range."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from evolora.errors import EvoloraError
from evolora.tasks.scorers import exact_score
from evolora.tasks.splits import check_split, split_of

MIN_DIFFICULTY = 1
MAX_DIFFICULTY = 5
DIFFICULTIES = tuple(range(MIN_DIFFICULTY, MAX_DIFFICULTY + 1))

# Rejection sampling for a split needs ~1/HOLDOUT_FRACTION tries on average; this bound only
# trips for a family whose prompt space at some difficulty has no member in the asked split.
MAX_SPLIT_TRIES = 10_000


@dataclass(frozen=True)
class Example:
    """One task instance: a one-line `prompt`, its one-line reference `answer`, and provenance.

    `meta` holds family-specific details (kind of problem, dataset scorer, source line); it takes
    no part in equality or hashing, so two examples are equal when their visible content is.
    """

    prompt: str
    answer: str
    family: str
    difficulty: int
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def check_difficulty(difficulty: int) -> int:
    """Return `difficulty` if it lies in MIN_DIFFICULTY..MAX_DIFFICULTY, else raise EvoloraError."""
    if (
        isinstance(difficulty, bool)
        or not isinstance(difficulty, (int, np.integer))
        or not (MIN_DIFFICULTY <= difficulty <= MAX_DIFFICULTY)
    ):
        valid = ", ".join(str(d) for d in DIFFICULTIES)
        raise EvoloraError(f"Difficulty {difficulty!r} is out of range; valid values are {valid}.")
    return int(difficulty)


class TaskFamily(abc.ABC):
    """A generator of examples of one kind, plus the scorer that judges completions for them.

    A subclass sets `name` (the registry key) and implements `generate`; it overrides `score`
    when exact match of the completion's first line is not the right judge.
    """

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def generate(self, rng: np.random.Generator, difficulty: int) -> Example:
        """Draw one example at `difficulty` (already validated) using only `rng` for randomness."""

    def sample(
        self, rng: np.random.Generator, difficulty: int, split: str | None = None
    ) -> Example:
        """Draw one example at `difficulty`; with `split`, only from that split (train/holdout)."""
        difficulty = check_difficulty(difficulty)
        if split is None:
            return self.generate(rng, difficulty)
        check_split(split)
        for _ in range(MAX_SPLIT_TRIES):
            example = self.generate(rng, difficulty)
            if split_of(example) == split:
                return example
        raise EvoloraError(
            f"Family {self.name!r} found no {split!r} example at difficulty {difficulty} in "
            f"{MAX_SPLIT_TRIES} tries; its prompt space there is too small to split."
        )

    def score(self, example: Example, completion: str) -> float:
        """Score `completion` against `example.answer` in [0, 1]; the default is exact match."""
        return exact_score(example.answer, completion)

    def describe(self) -> str:
        """The first line of the family's docstring, for listings."""
        doc = (type(self).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
