"""Multi-fidelity by asynchronous successive halving (ASHA, Li et al. 2020).

Trials start at the smallest budget; whenever a configuration is in the top 1/eta of the results
at its rung, it is queued for re-evaluation at eta times the budget (once the rung holds
`promote_after` results: ASHA's eta lets the best of the first three go, on the fewest results
to rank it by). The study's incumbent is the
best result at the highest rung reached, so a short, noisy evaluation never decides alone.

Every promotion also tests the low budgets: it pairs a configuration's result at one rung with
its result at the next, and `agreement` is Kendall's tau over those pairs. When it is no better
than chance the low budgets only add noise, and the study starts its new trials at the top rung.
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
        self.promote_after = cfg.promote_after or cfg.eta
        self.results: list[list[tuple[float, int]]] = [[] for _ in budgets]  # (loss, trial)
        self.promoted: list[set[int]] = [set() for _ in budgets]
        self.queue: deque[tuple[int, int]] = deque()  # (trial number, next rung)
        self.pairs: list[tuple[float, float]] = []  # (loss at a rung, loss at the next rung)

    @property
    def top(self) -> int:
        """Index of the last rung."""
        return len(self.budgets) - 1

    def record(self, rung: int, loss: float, trial: int) -> None:
        """Add a result and queue every configuration of this rung that now earns promotion."""
        self.results[rung].append((loss, trial))
        if rung == self.top or len(self.results[rung]) < self.promote_after:
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

    def pair(self, lower: float, upper: float) -> None:
        """Record one configuration's loss at a rung and at the next one."""
        self.pairs.append((lower, upper))

    def agreement(self) -> float:
        """Kendall's tau between lower- and next-rung losses over the recorded pairs (1: the
        low budgets rank like the high ones, 0: no better than chance; 1 with under 2 pairs)."""
        concordant = discordant = 0
        for i, (a, b) in enumerate(self.pairs):
            for c, d in self.pairs[i + 1 :]:
                sign = (a - c) * (b - d)
                concordant += sign > 0
                discordant += sign < 0
        total = concordant + discordant
        return 1.0 if total == 0 else (concordant - discordant) / total
