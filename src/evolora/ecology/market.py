"""The task market: each cell's price follows the colony's failures, a UCB bandit picks cells."""

from __future__ import annotations

import math

import numpy as np

from evolora.ecology.config import EnvironmentConfig

Cell = tuple[str, int]


class CellMarket:
    """Price per (family, difficulty) cell: up when the colony fails it, down when it succeeds."""

    def __init__(self, cells: list[Cell], env: EnvironmentConfig):
        self.cells = list(cells)
        self.env = env
        self.prices = {cell: env.price_initial for cell in self.cells}

    def update(self, cell: Cell, success_rate: float) -> float:
        """Move the cell's price by exp(step x (failure rate - success rate)) and clip it."""
        drift = self.env.price_step * ((1.0 - success_rate) - success_rate)
        price = self.prices[cell] * math.exp(drift)
        self.prices[cell] = min(self.env.price_max, max(self.env.price_min, price))
        return self.prices[cell]

    def state(self) -> dict:
        return {"prices": [[f, d, p] for (f, d), p in self.prices.items()]}

    def load_state(self, state: dict) -> None:
        self.prices = {(f, int(d)): float(p) for f, d, p in state["prices"]}


class UCBBandit:
    """UCB1 over cells; the value of a cell is the mean revenue an episode there earned."""

    def __init__(self, cells: list[Cell], c: float):
        self.cells = list(cells)
        self.c = c
        self.counts = np.zeros(len(cells))
        self.sums = np.zeros(len(cells))

    def scores(self) -> np.ndarray:
        """Upper confidence bound of every cell; cells never served score +inf."""
        total = max(1.0, self.counts.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(self.counts > 0, self.sums / self.counts, 0.0)
            bonus = self.c * np.sqrt(2.0 * math.log(total) / self.counts)
        return np.where(self.counts > 0, mean + bonus, np.inf)

    def select(self, k: int, rng: np.random.Generator) -> list[Cell]:
        """The k cells with the highest bounds (ties broken at random)."""
        order = np.lexsort((rng.random(len(self.cells)), -self.scores()))
        return [self.cells[i] for i in order[: min(k, len(self.cells))]]

    def observe(self, cell: Cell, value: float, n: int = 1) -> None:
        """Record n episodes on a cell whose values add up to n x value."""
        i = self.cells.index(cell)
        self.counts[i] += n
        self.sums[i] += value * n

    def state(self) -> dict:
        return {"counts": self.counts.tolist(), "sums": self.sums.tolist()}

    def load_state(self, state: dict) -> None:
        self.counts = np.asarray(state["counts"], dtype=float)
        self.sums = np.asarray(state["sums"], dtype=float)
