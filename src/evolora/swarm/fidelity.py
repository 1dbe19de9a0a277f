"""Multi-fidelity by asynchronous successive halving (ASHA, Li et al. 2020).

Trials start at the smallest budget; whenever a configuration is in the top 1/eta of the results
at its rung, it is queued for re-evaluation at eta times the budget. The study's incumbent is the
best result at the highest rung reached, so a short, noisy evaluation never decides alone.
"""

from __future__ import annotations

import math
from collections import deque

from evolora.swarm.config import FidelityConfig


class Rungs:
    """Results per rung and the promotions they call for."""

    def __init__(self, cfg: FidelityConfig) -> None:
        budgets = [cfg.min_budget]
        while budgets[-1] * cfg.eta <= cfg.max_budget * (1 + 1e-9):
            budgets.append(budgets[-1] * cfg.eta)
        self.budgets = budgets
        self.eta = cfg.eta
        self.results: list[list[tuple[float, int]]] = [[] for _ in budgets]  # (loss, trial)
        self.promoted: list[set[int]] = [set() for _ in budgets]
        self.queue: deque[tuple[int, int]] = deque()  # (trial number, next rung)

    @property
    def top(self) -> int:
        """Index of the last rung."""
        return len(self.budgets) - 1

    def record(self, rung: int, loss: float, trial: int) -> None:
        """Add a result and queue every configuration of this rung that now earns promotion."""
        self.results[rung].append((loss, trial))
        if rung == self.top:
            return
        ranked = sorted(self.results[rung])
        for loss_k, number in ranked[: math.floor(len(ranked) / self.eta)]:
            if number not in self.promoted[rung] and math.isfinite(loss_k):
                self.promoted[rung].add(number)
                self.queue.append((number, rung + 1))

    def next_promotion(self) -> tuple[int, int] | None:
        """(trial to re-evaluate, rung to evaluate it at), or None."""
        return self.queue.popleft() if self.queue else None

    def best_rung(self) -> int:
        """The highest rung holding a result."""
        return max((r for r, results in enumerate(self.results) if results), default=0)
