"""`TaskGrid`: a set of (family, difficulty) cells and a mixture sampler over them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from evolora.errors import EvoloraError
from evolora.tasks.base import DIFFICULTIES, Example, check_difficulty
from evolora.tasks.registry import family_names, get_family
from evolora.tasks.splits import check_split

Cell = tuple[str, int]

_NAMED_DIFFICULTIES = {
    "default": DIFFICULTIES,
    "easy": (1, 2),
    "medium": (3,),
    "hard": (4, 5),
}


class TaskGrid:
    """The cells `families x difficulties`, sampled uniformly or by a mixture of weights."""

    def __init__(self, families: Sequence[str], difficulties: Sequence[int]) -> None:
        if isinstance(families, str) or not families:
            raise EvoloraError(
                f"A task grid needs a non-empty list of families from {', '.join(family_names())}."
            )
        if not difficulties:
            raise EvoloraError(
                f"A task grid needs a non-empty list of difficulties from "
                f"{', '.join(map(str, DIFFICULTIES))}."
            )
        for name in families:
            get_family(name)
        self.families = list(dict.fromkeys(families))
        self.difficulties = list(dict.fromkeys(check_difficulty(d) for d in difficulties))
        self.cells: list[Cell] = [(f, d) for f in self.families for d in self.difficulties]

    @classmethod
    def named(cls, name: str) -> TaskGrid:
        """A named grid: default (all families, 1-5), easy (1-2), medium (3), hard (4-5), or a
        family's name (that family, 1-5)."""
        if name in _NAMED_DIFFICULTIES:
            return cls(family_names(), _NAMED_DIFFICULTIES[name])
        if name in family_names():
            return cls([name], DIFFICULTIES)
        valid = ", ".join([*_NAMED_DIFFICULTIES, *family_names()])
        raise EvoloraError(f"Unknown task grid {name!r}; valid grids are {valid}.")

    def __repr__(self) -> str:
        return f"TaskGrid(families={self.families!r}, difficulties={self.difficulties!r})"

    def sample(
        self, rng: np.random.Generator, cell: Cell | None = None, split: str | None = None
    ) -> Example:
        """One example from `cell` (a uniformly drawn cell when None), optionally from `split`."""
        if cell is None:
            cell = self.cells[int(rng.integers(len(self.cells)))]
        elif tuple(cell) not in self.cells:
            raise EvoloraError(f"Cell {cell!r} is not in this grid; its cells are {self.cells}.")
        family, difficulty = cell
        return get_family(family).sample(rng, difficulty, split)

    def sample_batch(
        self,
        rng: np.random.Generator,
        n: int,
        split: str | None = None,
        weights: Sequence[float] | Mapping[Cell, float] | None = None,
    ) -> list[Example]:
        """`n` examples, each from a cell drawn by `weights` (uniform when None).

        `weights` is one non-negative number per cell (in `cells` order) or a mapping from cell
        to weight (missing cells weigh 0); they are normalised.
        """
        if n < 0:
            raise EvoloraError(f"Batch size n must be 0 or more, got {n}.")
        if split is not None:
            check_split(split)
        probs = self._probabilities(weights)
        picks = rng.choice(len(self.cells), size=n, p=probs)
        return [self.sample(rng, self.cells[i], split) for i in picks]

    def _probabilities(self, weights: Sequence[float] | Mapping[Cell, float] | None) -> np.ndarray:
        if weights is None:
            return np.full(len(self.cells), 1.0 / len(self.cells))
        if isinstance(weights, Mapping):
            unknown = [c for c in weights if tuple(c) not in self.cells]
            if unknown:
                raise EvoloraError(f"Weights name cells {unknown} that are not in this grid.")
            values = np.array([float(weights.get(c, 0.0)) for c in self.cells])
        else:
            values = np.asarray(weights, dtype=float).reshape(-1)
            if values.size != len(self.cells):
                raise EvoloraError(
                    f"Got {values.size} weights for a grid of {len(self.cells)} cells; give one "
                    f"per cell in `cells` order."
                )
        if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
            raise EvoloraError("Cell weights must be finite, non-negative and not all zero.")
        return values / values.sum()
