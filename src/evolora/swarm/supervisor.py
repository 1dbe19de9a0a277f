"""The supervisor: the global heatmap, overlap detection and reallocation, cloning of successful
teams and retirement of failing ones, and the true diversity metric with re-seeding."""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from evolora.swarm.agent import Agent
from evolora.swarm.config import SwarmConfig
from evolora.swarm.diversity import mean_pairwise_distance
from evolora.swarm.heatmap import Heatmap
from evolora.swarm.manager import Team
from evolora.swarm.region import Box, overlap, shrink

EXPLORE = ["random", "cmaes", "trust"]


class Supervisor:
    """Watches every evaluation and reshapes the teams every `supervisor.every` tells."""

    def __init__(self, config: SwarmConfig, dim: int) -> None:
        self.config, self.cfg, self.dim = config, config.supervisor, dim
        self.heatmap = Heatmap(dim, self.cfg.heat_bins)
        self.recent: deque[np.ndarray] = deque(maxlen=self.cfg.window)
        self.diversity = 1.0
        self.next_team_id = 0
        self.next_agent_id = 0
        self.retire_after = self.cfg.retire_after  # a short study's tempo lowers it
        self._last_best: dict[int, float] = {}

    # -- building teams ------------------------------------------------------------------------

    def new_team(
        self,
        region: Box,
        born: int,
        parent: int | None = None,
        start: tuple[np.ndarray, float] | None = None,
        strategies: list[str] | None = None,
    ) -> Team:
        """A team of `agents_per_team` fresh agents in `region`, optionally started at a point."""
        strategies = strategies or self.config.strategies
        agents = []
        for index in range(self.config.agents_per_team):
            agent = Agent(self.next_agent_id, region, "random")
            if start is not None:
                agent.best_u, agent.best_loss = region.clip(start[0]), start[1]
            agent.reassign(strategies[index % len(strategies)], region)
            agents.append(agent)
            self.next_agent_id += 1
        team = Team(self.next_team_id, region, agents, born, parent)
        self.next_team_id += 1
        return team

    def heat(self, points: np.ndarray) -> np.ndarray:
        """Evaluations already in each point's heatmap cell (what random proposals avoid)."""
        return self.heatmap.count(points)

    def observe(self, u: np.ndarray, loss: float) -> None:
        """Record one evaluation in the global map."""
        self.heatmap.add(u, loss)
        self.recent.append(u)

    def open_space(self, rng: np.random.Generator, teams: list[Team]) -> np.ndarray:
        """A point in unexplored space: the least-visited heatmap cell among candidates, far from
        every team's best (uniform when the heatmap is off)."""
        if not self.cfg.heatmap:
            return rng.random(self.dim)
        points = rng.random((64, self.dim))
        score = self.heatmap.count(points)
        bests = [t.best_u for t in teams if t.best_u is not None]
        if bests:
            gaps = np.min(np.linalg.norm(points[:, None] - np.stack(bests)[None], axis=2), axis=1)
            score = score - gaps / math.sqrt(self.dim)
        return points[int(np.argmin(score))]

    # -- the supervisor's rules ----------------------------------------------------------------

    def act(self, teams: list[Team], told: int, rng: np.random.Generator) -> list[dict]:
        """Apply overlap, cloning / retirement and diversity rules once; return the events."""
        events: list[dict] = []
        if self.cfg.overlap:
            events += self._separate(teams, rng)
        if self.cfg.cloning:
            events += self._clone_and_retire(teams, told)
        if len(self.recent) >= 8:
            self.diversity = mean_pairwise_distance(np.stack(self.recent))
            if self.cfg.diversity_reseed and self.diversity < self.cfg.diversity_threshold:
                events += self._reseed(teams, rng)
        self._last_best = {team.id: team.best_loss for team in teams}
        return events

    def _separate(self, teams: list[Team], rng: np.random.Generator) -> list[dict]:
        """Move the worse of two teams whose bests nearly coincide, or whose regions overlap
        while the worse one made no progress since the last cycle, to open space."""
        events = []
        moved: set[int] = set()
        for i, a in enumerate(teams):
            for b in teams[i + 1 :]:
                if a.id in moved or b.id in moved or self._related(a, b):
                    continue
                shared = overlap(a.region, b.region)
                close = (
                    a.best_u is not None
                    and b.best_u is not None
                    and np.linalg.norm(a.best_u - b.best_u) / math.sqrt(self.dim)
                    < self.cfg.best_distance
                )
                worse = a if a.best_loss > b.best_loss else b
                idle = worse.best_loss >= self._last_best.get(worse.id, math.inf)
                if not close and (shared < self.cfg.overlap_threshold or not idle):
                    continue
                region = Box.around(self.open_space(rng, teams), self._width(len(teams)))
                worse.relocate(region, EXPLORE)
                moved.add(worse.id)
                why = f"overlap {shared:.2f} with team {(b if worse is a else a).id}"
                events.append(
                    {
                        "event": "reallocate",
                        "team": worse.id,
                        "reason": why + (" (bests nearly equal)" if close else ""),
                        "region": region.to_list(),
                    }
                )
        return events

    def _related(self, a: Team, b: Team) -> bool:
        """A young clone shares its parent's region on purpose."""
        young = self.retire_after
        return (a.parent == b.id and a.evals < young) or (b.parent == a.id and b.evals < young)

    def _clone_and_retire(self, teams: list[Team], told: int) -> list[dict]:
        events = []
        ranked = sorted((t for t in teams if t.best_u is not None), key=lambda t: t.best_loss)
        if not ranked:
            return events
        worst = ranked[-1]
        if (
            len(teams) > self.cfg.min_teams
            and len(ranked) > 1
            and worst.stalled >= self.retire_after
        ):
            teams.remove(worst)
            events.append(
                {
                    "event": "retire",
                    "team": worst.id,
                    "reason": f"worst team, {worst.stalled} evaluations without improving",
                }
            )
        best = ranked[0]
        improved = best.best_loss < self._last_best.get(best.id, math.inf)
        if improved and len(teams) < self.cfg.max_teams and best.best_u is not None:
            region = shrink(best.region, best.best_u, 0.5)
            clone = self.new_team(region, told, parent=best.id, start=(best.best_u, best.best_loss))
            teams.append(clone)
            events.append(
                {
                    "event": "clone",
                    "team": clone.id,
                    "parent": best.id,
                    "reason": f"team {best.id} leads and improved to {best.best_loss:.4g}",
                    "region": region.to_list(),
                }
            )
        return events

    def _reseed(self, teams: list[Team], rng: np.random.Generator) -> list[dict]:
        ranked = sorted(teams, key=lambda t: t.best_loss)
        target = ranked[-1] if len(ranked) > 1 else ranked[0]
        region = Box.around(self.open_space(rng, teams), self._width(len(teams)))
        target.relocate(region, EXPLORE)
        return [
            {
                "event": "reseed",
                "team": target.id,
                "region": region.to_list(),
                "reason": f"diversity {self.diversity:.3f} below {self.cfg.diversity_threshold}",
            }
        ]

    def _width(self, n_teams: int) -> float:
        """Side of a fresh team's box: the cube shared among the teams."""
        return float(max(0.25, (1.0 / max(1, n_teams)) ** (1.0 / self.dim)))

    def status(self, teams: list[Team]) -> dict:
        """Flat metrics for the live table and teams.jsonl."""
        return {
            "swarm/teams": len(teams),
            "swarm/diversity": round(self.diversity, 4),
            "swarm/coverage": self.heatmap.coverage(),
            "swarm/cells_visited": self.heatmap.visited,
        }
