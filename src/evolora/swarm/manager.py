"""A team: a manager, its agents, its region and its meta-memory.

The manager (the seed's rules, each logged with its reason):
- keeps a meta-memory: the best configuration per context (the strategy that found it) and
  every point the team visited with its loss;
- shrinks the team's region around the team's best when it improves;
- reassigns a stuck agent (no improvement for `patience` evaluations) to the next strategy and to
  one side of a split of the team's region around the best (explorers to the side away from it,
  avoiding regions peers have claimed);
- moves a lagging agent (its best below `lag_fraction` of the team's, measured against the team's
  median) onto the memory's suggestion with jitter, or onto a peer's better best;
- sends and receives manager-to-manager messages: bests (where lagging agents migrate, and
  recombination partners) and claimed regions (which explorers avoid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evolora.swarm.agent import Agent
from evolora.swarm.config import ManagerConfig
from evolora.swarm.region import Box, overlap, split


@dataclass(frozen=True, eq=False)
class Message:
    """What one manager tells the others: its best point and the region it claims."""

    sender: int
    best_u: np.ndarray | None
    best_loss: float
    region: Box


class Memory:
    """A team's meta-memory: best point per context and every visited point with its loss."""

    def __init__(self, dim: int) -> None:
        self.best: dict[str, tuple[np.ndarray, float]] = {}
        self._points = np.empty((64, dim))
        self._losses = np.empty(64)
        self.size = 0

    def add(self, context: str, u: np.ndarray, loss: float) -> None:
        """Remember a visited point and, if it is the best of its context, that too."""
        if self.size == len(self._losses):
            self._points = np.concatenate([self._points, np.empty_like(self._points)])
            self._losses = np.concatenate([self._losses, np.empty_like(self._losses)])
        self._points[self.size], self._losses[self.size] = u, loss
        self.size += 1
        if loss < self.best.get(context, (None, math.inf))[1]:
            self.best[context] = (u.copy(), loss)

    @property
    def points(self) -> np.ndarray:
        """Every visited point, (n, dim)."""
        return self._points[: self.size]

    @property
    def losses(self) -> np.ndarray:
        """Their losses, (n,)."""
        return self._losses[: self.size]

    def suggestion(self) -> tuple[str, np.ndarray, float] | None:
        """The context (strategy), point and loss of the best configuration remembered."""
        if not self.best:
            return None
        context = min(self.best, key=lambda name: self.best[name][1])
        return context, *self.best[context]


class Team:
    """A manager with its agents, region, memory and inbox."""

    def __init__(
        self, team_id: int, region: Box, agents: list[Agent], born: int, parent: int | None = None
    ) -> None:
        self.id, self.region, self.agents = team_id, region, agents
        self.born, self.parent = born, parent
        dim = region.lo.shape[0]
        self.memory = Memory(dim)
        self.best_u: np.ndarray | None = None
        self.best_loss = math.inf
        self.evals = 0
        self.last_improved = 0
        self.improved_since_manage = False
        self.peer_bests: dict[int, tuple[np.ndarray, float]] = {}
        self.peer_regions: dict[int, Box] = {}

    def next_agent(self, rng: np.random.Generator, focus: float) -> Agent:
        """The agent to propose next, drawn by rank of its best (see `study._rank_draw`)."""
        from evolora.swarm.study import rank_draw

        return self.agents[rank_draw([a.best_loss for a in self.agents], rng, focus)]

    def peers_for(self, agent: Agent) -> list[np.ndarray]:
        """Recombination partners for an agent: teammates' bests and bests peers sent."""
        mates = [a.best_u for a in self.agents if a is not agent and a.best_u is not None]
        return mates + [u for u, _ in self.peer_bests.values() if u is not None]

    def tell(self, agent: Agent | None, u: np.ndarray, loss: float) -> None:
        """Record an evaluation made by one of the team's agents."""
        self.evals += 1
        context = agent.strategy_name if agent is not None else "promotion"
        self.memory.add(context, u, loss)
        if agent is not None:
            agent.tell(u, loss)
        if loss < self.best_loss:
            self.best_u, self.best_loss = u.copy(), loss
            self.last_improved = self.evals
            self.improved_since_manage = True

    @property
    def stalled(self) -> int:
        """Team evaluations since the team's best last improved."""
        return self.evals - self.last_improved

    # -- the manager's rules -------------------------------------------------------------------

    def manage(
        self, cfg: ManagerConfig, strategies: list[str], rng: np.random.Generator, patience: int
    ) -> list[dict]:
        """Apply the manager's rules once; return the events (with reasons) it caused."""
        events: list[dict] = []
        if self.improved_since_manage and self.best_u is not None:
            # Narrower, but never below min_width, and always re-centred on the best, so the
            # region follows the best instead of pinning it to a side.
            width = np.maximum(self.region.width * cfg.shrink, cfg.min_width)
            self.region = Box.around(self.best_u, np.minimum(width, self.region.width))
            for agent in self.agents:
                agent.region = self.region
            events.append(self._event("shrink", "the team's best improved"))
        self.improved_since_manage = False
        for agent in self.agents:
            if agent.stalled >= patience:
                events.append(self._unstick(agent, strategies, rng, patience))
            elif agent.evals >= patience // 2 and self._lagging(agent, cfg):
                events.append(self._adopt_suggestion(agent, cfg, rng))
        return [event for event in events if event]

    def _lagging(self, agent: Agent, cfg: ManagerConfig) -> bool:
        """The seed's rule: the agent's best is below a fraction of the team's best (a score of
        1 at the team's best and 0 at the team's median loss)."""
        if self.memory.size < 4 or math.isinf(agent.best_loss):
            return math.isinf(agent.best_loss) and self.memory.size >= 4
        median = float(np.median(self.memory.losses))
        if median <= self.best_loss:
            return False
        score = (median - agent.best_loss) / (median - self.best_loss)
        return score < cfg.lag_fraction

    def _adopt_suggestion(self, agent: Agent, cfg: ManagerConfig, rng: np.random.Generator) -> dict:
        """Move a lagging agent onto the best configuration it knows of, with jitter: the team
        memory's best, or a better best a peer manager sent (then it works around that point,
        in a box of the team's region's size)."""
        suggestion = self.memory.suggestion()
        if suggestion is None:
            return {}
        context, u, loss = suggestion
        strategy = context if context in ("trust", "cmaes", "recombine") else "trust"
        region, source = self.region, f"the memory's suggestion ({context})"
        sender = min(self.peer_bests, key=lambda k: self.peer_bests[k][1], default=None)
        if sender is not None and self.peer_bests[sender][1] < loss:
            (u, loss), strategy = self.peer_bests[sender], "trust"
            source = f"team {sender}'s better best, from its message"
            region = Box.around(u, self.region.width)
        start = np.clip(u + rng.standard_normal(u.shape) * cfg.jitter, 0.0, 1.0)
        agent.reassign(strategy, region, start=(u, loss), origin=start)
        return self._event(
            "reassign",
            f"agent below the team's best; adopts {source} with jitter",
            agent=agent.id,
            strategy=strategy,
        )

    def _unstick(
        self, agent: Agent, strategies: list[str], rng: np.random.Generator, patience: int
    ) -> dict:
        old = agent.strategy_name
        rotation = strategies if len(strategies) > 1 else [*strategies, "random"]
        index = rotation.index(old) if old in rotation else -1
        strategy = rotation[(index + 1) % len(rotation)]
        center = self.best_u if self.best_u is not None else self.region.center
        near, far = split(self.region, center)
        if strategy == "random":
            region = far if self._claimed(far) <= self._claimed(near) else near
            agent.reassign(strategy, region)
        else:
            agent.reassign(strategy, near, start=(center, self.best_loss))
        return self._event(
            "reassign",
            f"agent stuck {patience} evaluations with {old}",
            agent=agent.id,
            strategy=strategy,
            region=agent.region.to_list(),
        )

    def claimed_by_peers(self) -> list[Box]:
        """The regions peers claimed in their messages, except one nested with this team's
        region (a clone and its parent): its random explorers keep out of them."""
        return [r for r in self.peer_regions.values() if overlap(self.region, r) < 1.0]

    def _claimed(self, box: Box) -> float:
        """How much of `box` other teams claim (0 when no messages arrived)."""
        return max((overlap(box, region) for region in self.peer_regions.values()), default=0.0)

    # -- messages ------------------------------------------------------------------------------

    def message(self) -> Message:
        """This manager's message to its peers."""
        return Message(self.id, self.best_u, self.best_loss, self.region)

    def receive(self, message: Message) -> None:
        """Take in a peer's best and claimed region."""
        if message.best_u is not None:
            self.peer_bests[message.sender] = (message.best_u, message.best_loss)
        self.peer_regions[message.sender] = message.region

    def forget(self, team_id: int) -> None:
        """Drop what a retired or moved peer said."""
        self.peer_bests.pop(team_id, None)
        self.peer_regions.pop(team_id, None)

    def relocate(self, region: Box, strategies: list[str]) -> None:
        """Move the whole team to a new region with fresh agents' strategies and no best."""
        self.region = region
        self.best_u, self.best_loss = None, math.inf
        self.last_improved = self.evals
        for index, agent in enumerate(self.agents):
            agent.best_u, agent.best_loss = None, math.inf
            agent.reassign(strategies[index % len(strategies)], region)

    def _event(self, kind: str, reason: str, **extra: object) -> dict:
        return {"event": kind, "team": self.id, "reason": reason, **extra}

    def summary(self) -> dict:
        """The team's state for teams.jsonl and the live table."""
        return {
            "team": self.id,
            "parent": self.parent,
            "best": None if math.isinf(self.best_loss) else self.best_loss,
            "evals": self.evals,
            "region": self.region.to_list(),
            "agents": [agent.report() for agent in self.agents],
        }
