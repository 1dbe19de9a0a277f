"""How an agent proposes its next point: a small plug-in contract and four strategies.

A strategy has `propose(agent, rng, context) -> u` and `observe(u, loss)`; a new rule is a new
class registered in `STRATEGIES`. Losses are always minimised (the study flips maximisation).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from evolora.swarm.region import Box

CLAIMED = 1e6  # a claimed candidate loses to any unclaimed one, whatever the heatmap says

if TYPE_CHECKING:
    from evolora.swarm.agent import Agent


@dataclass
class Context:
    """What an agent may look at beyond itself: peers' bests, the global heatmap, and the
    regions other teams claimed in their managers' messages."""

    peers: list[np.ndarray] = field(default_factory=list)
    heat: Callable[[np.ndarray], np.ndarray] | None = None
    claimed: list[Box] = field(default_factory=list)


class Strategy(abc.ABC):
    """A local search rule an agent runs inside its region."""

    name: ClassVar[str]

    @abc.abstractmethod
    def propose(self, agent: Agent, rng: np.random.Generator, context: Context) -> np.ndarray:
        """The next unit-cube point to evaluate."""

    def observe(self, u: np.ndarray, loss: float) -> None:  # noqa: B027 (optional hook)
        """Learn from an evaluated point (the agent's best is tracked by the agent)."""


class RandomInRegion(Strategy):
    """Uniform points in the region; with a heatmap, the least-visited of a few candidates, and
    never a candidate inside a region another team claimed when one outside is left."""

    name = "random"
    candidates = 8

    def propose(self, agent: Agent, rng: np.random.Generator, context: Context) -> np.ndarray:
        if context.heat is None and not context.claimed:
            return agent.region.sample(rng)
        points = agent.region.sample(rng, self.candidates)
        counts = context.heat(points) if context.heat is not None else np.zeros(len(points))
        for box in context.claimed:
            counts = counts + CLAIMED * np.all((points >= box.lo) & (points <= box.hi), axis=1)
        return points[int(np.argmin(counts + rng.random(len(points)) * 0.5))]


class TrustRegion(Strategy):
    """A (1+1)-ES around the agent's best: Gaussian steps whose radius follows the 1/5th success
    rule (x1.5 on success, x1.5^-1/4 on failure), in unit-cube units, starting at a fifth of
    the region's width."""

    name = "trust"

    def __init__(self, radius: float = 0.1) -> None:
        self.radius = radius
        self._best = math.inf

    def propose(self, agent: Agent, rng: np.random.Generator, context: Context) -> np.ndarray:
        if agent.best_u is None:
            return agent.region.sample(rng)
        step = rng.standard_normal(agent.best_u.shape) * self.radius
        return np.clip(agent.best_u + step, 0.0, 1.0)

    def observe(self, u: np.ndarray, loss: float) -> None:
        if loss < self._best:
            self._best = loss
            self.radius = min(0.5, self.radius * 1.5)
        else:
            self.radius = max(1e-9, self.radius * 1.5**-0.25)


class CMAES(Strategy):
    """A small (mu/mu_w, lambda) CMA-ES (Hansen 2016, "The CMA Evolution Strategy: a tutorial")
    on the unit cube. It starts in the agent's region with a step size from the region's width
    and may follow its mean out of it (a region pins a local search's start, not its optimum)."""

    name = "cmaes"

    def __init__(self, dim: int, mean: np.ndarray, sigma: float) -> None:
        n = dim
        self.n, self.mean, self.sigma = n, mean.astype(float).copy(), sigma
        self.lam = 4 + int(3 * math.log(n))
        mu = self.lam // 2
        w = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
        self.weights = w / w.sum()
        self.mueff = 1.0 / float(np.sum(self.weights**2))
        me = self.mueff
        self.cc = (4 + me / n) / (n + 4 + 2 * me / n)
        self.cs = (me + 2) / (n + me + 5)
        self.c1 = 2 / ((n + 1.3) ** 2 + me)
        self.cmu = min(1 - self.c1, 2 * (me - 2 + 1 / me) / ((n + 2) ** 2 + me))
        self.damps = 1 + 2 * max(0.0, math.sqrt((me - 1) / (n + 1)) - 1) + self.cs
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
        self.pc, self.ps = np.zeros(n), np.zeros(n)
        self.cov, self.basis, self.scales = np.eye(n), np.eye(n), np.ones(n)
        self.generation = 0
        self._told: list[tuple[np.ndarray, float]] = []

    def propose(self, agent: Agent, rng: np.random.Generator, context: Context) -> np.ndarray:
        z = rng.standard_normal(self.n)
        x = self.mean + self.sigma * (self.basis @ (self.scales * z))
        return np.clip(x, 0.0, 1.0)

    def observe(self, u: np.ndarray, loss: float) -> None:
        self._told.append((u, loss))
        if len(self._told) >= self.lam:
            self._update(sorted(self._told, key=lambda pair: pair[1]))
            self._told = []

    def _update(self, ranked: list[tuple[np.ndarray, float]]) -> None:
        n, mu = self.n, len(self.weights)
        ys = np.stack([(u - self.mean) / self.sigma for u, _ in ranked[:mu]])  # (mu, n)
        y_w = self.weights @ ys
        self.mean = self.mean + self.sigma * y_w
        inv_sqrt = self.basis @ np.diag(1 / self.scales) @ self.basis.T
        self.ps = (1 - self.cs) * self.ps + math.sqrt(self.cs * (2 - self.cs) * self.mueff) * (
            inv_sqrt @ y_w
        )
        self.generation += 1
        ps_norm = float(np.linalg.norm(self.ps))
        decay = math.sqrt(1 - (1 - self.cs) ** (2 * self.generation))
        hsig = ps_norm / decay / self.chi_n < 1.4 + 2 / (n + 1)
        self.pc = (1 - self.cc) * self.pc + hsig * math.sqrt(
            self.cc * (2 - self.cc) * self.mueff
        ) * y_w
        rank_mu = (ys.T * self.weights) @ ys
        self.cov = (
            (1 - self.c1 - self.cmu) * self.cov
            + self.c1
            * (np.outer(self.pc, self.pc) + (1 - hsig) * self.cc * (2 - self.cc) * self.cov)
            + self.cmu * rank_mu
        )
        step = math.exp((self.cs / self.damps) * (ps_norm / self.chi_n - 1))
        self.sigma = min(0.5, self.sigma * step)
        self.cov = (self.cov + self.cov.T) / 2
        eigenvalues, self.basis = np.linalg.eigh(self.cov)
        self.scales = np.sqrt(np.clip(eigenvalues, 1e-20, None))


class Recombine(Strategy):
    """Blend the agent's best with a peer's best (BLX-0.25 crossover) plus a small mutation."""

    name = "recombine"

    def propose(self, agent: Agent, rng: np.random.Generator, context: Context) -> np.ndarray:
        if agent.best_u is None or not context.peers:
            return agent.region.sample(rng)
        partner = context.peers[int(rng.integers(len(context.peers)))]
        blend = rng.uniform(-0.25, 1.25, size=partner.shape)
        child = agent.best_u + blend * (partner - agent.best_u)
        child = child + rng.standard_normal(child.shape) * 0.02 * agent.region.width
        return np.clip(child, 0.0, 1.0)


STRATEGIES = ("random", "trust", "cmaes", "recombine")


def make_strategy(name: str, agent: Agent, origin: np.ndarray | None = None) -> Strategy:
    """A fresh strategy `name` for `agent`; a CMA-ES starts at `origin`, else at the agent's
    best, else at its region's centre."""
    dim = agent.region.lo.shape[0]
    if name == "random":
        return RandomInRegion()
    if name == "trust":
        return TrustRegion(0.2 * float(np.mean(agent.region.width)))
    if name == "cmaes":
        start = origin if origin is not None else agent.best_u
        start = start if start is not None else agent.region.center
        return CMAES(dim, agent.region.clip(start), 0.3 * float(np.mean(agent.region.width)))
    if name == "recombine":
        return Recombine()
    raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
