"""An agent: a local explorer that owns a region, runs one strategy in it, tracks its progress."""

from __future__ import annotations

import math

import numpy as np

from evolora.swarm.region import Box
from evolora.swarm.strategies import Context, Strategy, make_strategy


class Agent:
    """Tries many points in its region with its strategy; remembers its best and its history."""

    def __init__(self, agent_id: int, region: Box, strategy: str) -> None:
        self.id = agent_id
        self.region = region
        self.best_u: np.ndarray | None = None
        self.best_loss = math.inf
        self.evals = 0
        self.last_improved = 0
        self.history: list[float] = []  # its best loss after each evaluation
        self.strategy_name = strategy
        self.strategy: Strategy = make_strategy(strategy, self)

    def ask(self, rng: np.random.Generator, context: Context) -> np.ndarray:
        """The next point this agent wants evaluated."""
        return self.strategy.propose(self, rng, context)

    def tell(self, u: np.ndarray, loss: float) -> bool:
        """Record an evaluated point; True when it improved the agent's best."""
        self.evals += 1
        self.strategy.observe(u, loss)
        improved = loss < self.best_loss
        if improved:
            self.best_u, self.best_loss = u.copy(), loss
            self.last_improved = self.evals
        self.history.append(self.best_loss)
        return improved

    @property
    def stalled(self) -> int:
        """Evaluations since this agent last improved its best."""
        return self.evals - self.last_improved

    def reassign(
        self,
        strategy: str,
        region: Box,
        start: tuple[np.ndarray, float] | None = None,
        origin: np.ndarray | None = None,
    ) -> None:
        """Give the agent a new strategy and region; `start` (point, loss) becomes its best and
        the strategy starts searching at `origin` (default: the best, or the region's centre)."""
        self.region = region
        if start is not None:
            self.best_u, self.best_loss = region.clip(start[0]), start[1]
        elif self.best_u is not None and not region.contains(self.best_u):
            self.best_u, self.best_loss = None, math.inf
        self.strategy_name = strategy
        self.strategy = make_strategy(strategy, self, origin)
        self.last_improved = self.evals

    def report(self) -> dict:
        """A small summary for the team's log."""
        return {
            "agent": self.id,
            "strategy": self.strategy_name,
            "best": None if math.isinf(self.best_loss) else self.best_loss,
            "evals": self.evals,
            "stalled": self.stalled,
        }
