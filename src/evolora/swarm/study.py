"""The swarm's entry point: `Swarm.ask()` / `Swarm.tell(trial, value)` / `Swarm.optimize(...)`.

One ask picks the next team (round robin) and its next agent, which proposes a unit-cube point
in its region; the point is decoded into a configuration. One tell updates the heatmap, the
team's memory and the agent; every `manager.every` team tells the manager acts, every
`supervisor.every` tells the supervisor acts and the managers exchange messages. A study whose
horizon is shorter than four supervisor cycles scales those cadences, the patience and the
retirement age down to it (`tempo`), or the hierarchy would never act in it. Every decision
becomes an event (with its reason) in `swarm.events`, which the run loop writes to teams.jsonl.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evolora.errors import EvoloraError
from evolora.swarm.config import SwarmConfig
from evolora.swarm.fidelity import Rungs
from evolora.swarm.manager import Team
from evolora.swarm.pareto import Scalarizer, front
from evolora.swarm.region import Box, split
from evolora.swarm.space import Space
from evolora.swarm.strategies import Context
from evolora.swarm.supervisor import Supervisor

REDRAWS = 8


@dataclass
class Trial:
    """One evaluation the swarm asked for."""

    number: int
    params: dict[str, Any]
    u: np.ndarray
    team: int | None
    agent: int | None
    budget: float | None = None
    rung: int = 0
    state: str = "pending"  # pending | complete | failed
    value: float | None = None
    error: str | None = None
    values: list[float] | None = None  # one per objective, multi-objective swarms only
    asked: int | None = None  # trials asked when this one was told (replays the interleaving)
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The trial as a trials.jsonl record."""
        return {
            "trial": self.number,
            "state": self.state,
            "value": self.value,
            "params": self.params,
            "u": self.u.round(6).tolist(),
            "team": self.team,
            "agent": self.agent,
            "budget": self.budget,
            "rung": self.rung,
            "error": self.error,
            "asked": self.asked,
            **({"values": self.values} if self.values is not None else {}),
        }


class Swarm:
    """Hierarchical swarm search over a `Space` (agents, managers, supervisor)."""

    def __init__(self, space: Space | Mapping[str, Any], config: SwarmConfig | None = None) -> None:
        self.space = space if isinstance(space, Space) else Space.from_dict(space)
        self.config = config or SwarmConfig()
        directions = self.config.directions or [self.config.direction]
        self.sign = 1.0 if directions[0] == "minimize" else -1.0
        self.scalarizer = (
            Scalarizer([1.0 if d == "minimize" else -1.0 for d in directions], self.config.seed)
            if self.config.directions
            else None
        )
        self.rng = np.random.default_rng(self.config.seed)
        dim = self.space.dim
        self.supervisor = Supervisor(self.config, dim)
        self.set_horizon(self.config.horizon)
        self.teams: list[Team] = [
            self.supervisor.new_team(box, born=0) for box in _partition(dim, self.config.teams)
        ]
        self.rungs = Rungs(self.config.fidelity) if self.config.fidelity.enabled else None
        self.refiner: Team | None = None  # local steps at max budget around the top-rung best
        self.skip_low = False  # the low budgets proved uninformative: new trials start at the top
        self.trials: list[Trial] = []
        self.events: list[dict] = []
        self.told = 0
        self._team_turn = 0
        self._pending: dict[int, tuple[Team, Any]] = {}
        self._seen: set[str] = set()
        self._worst = -math.inf
        self._best: Trial | None = None

    def set_horizon(self, trials: int | None) -> None:
        """Pace the hierarchy for a study of `trials` trials (None: unknown, the configured
        pace): with `tempo`, a study shorter than four supervisor cycles scales the manager and
        supervisor cadences, the patience and the retirement age by its share of them."""
        cfg = self.config
        patience = cfg.manager.patience or 20 + 10 * self.space.dim
        every = cfg.supervisor.every
        scale = 1.0 if trials is None or not cfg.tempo else min(1.0, trials / (4 * every))
        self.horizon = trials
        self.manager_every = min(cfg.manager.every, max(2, round(cfg.manager.every * scale)))
        self.supervisor_every = min(every, max(4, round(every * scale)))
        self.patience = max(4, round(patience * scale))
        self.supervisor.retire_after = max(4, round(cfg.supervisor.retire_after * scale))

    # -- ask / tell ----------------------------------------------------------------------------

    def ask(self) -> Trial:
        """The next trial to evaluate (a promotion to a larger budget when one is due)."""
        if self.rungs is not None and (due := self.rungs.next_promotion()) is not None:
            source, rung = self.trials[due[0]], due[1]
            trial = Trial(
                len(self.trials),
                dict(source.params),
                source.u,
                source.team,
                None,
                budget=self.rungs.budgets[rung],
                rung=rung,
                extra={"source": source.number},
            )
            self.trials.append(trial)
            return trial
        refine = self.refiner is not None and self.rng.random() < self._refine_share()
        team = self.refiner if refine else self._pick_team()
        agent = team.next_agent(self.rng, self.config.focus)
        context = Context(
            team.peers_for(agent),
            self.supervisor.heat if self.config.supervisor.heatmap else None,
            team.claimed_by_peers(),
        )
        # The meta-memory of visited configurations: a proposal that decodes to one already
        # tried (a step inside one cell of an int or categorical) is redrawn, a few times at most.
        for _ in range(REDRAWS):
            u = np.clip(agent.ask(self.rng, context), 0.0, 1.0)
            params = self.space.decode(u)
            key = repr(sorted(params.items()))
            if key not in self._seen:
                break
        self._seen.add(key)
        rung = self.rungs.top if refine or self.skip_low else 0
        budget = self.rungs.budgets[rung] if self.rungs is not None else None
        trial = Trial(len(self.trials), params, u, team.id, agent.id, budget=budget, rung=rung)
        self.trials.append(trial)
        self._pending[trial.number] = (team, agent)
        return trial

    def _refine_share(self) -> float:
        """The refinement team's share of new trials: `refine_share`, halved for each run of
        `refine_patience` (of the horizon) of its trials since it last improved or moved to a
        new leader."""
        patience = self._refine_patience()
        share = self.config.fidelity.refine_share
        return share if patience is None else share / 2 ** (self.refiner.stalled // patience)

    def _refine_patience(self) -> int | None:
        """Refinement trials without improvement after which its share halves (None: never)."""
        share = self.config.fidelity.refine_patience
        if share is None or self.horizon is None:
            return None
        return max(3, round(share * self.horizon))

    def _pick_team(self) -> Team:
        """A team drawn with weight 1 / (rank + 1)^focus by best loss: leaders get most trials,
        every team keeps some (teams without a result rank in the middle)."""
        return self.teams[rank_draw([t.best_loss for t in self.teams], self.rng, self.config.focus)]

    def tell(
        self, trial: Trial | int, value: float | Sequence[float] | None, error: str | None = None
    ) -> Trial:
        """Record a trial's value (one per objective with `directions`; None, NaN or an `error`
        mark it failed); the hierarchy acts."""
        trial = self.trials[trial] if isinstance(trial, int) else trial
        if trial.state != "pending":
            raise EvoloraError(f"Trial {trial.number} was already told ({trial.state}).")
        values = self._values(value)
        failed = error is not None or values is None or not all(map(math.isfinite, values))
        trial.asked = len(self.trials)
        trial.state = "failed" if failed else "complete"
        trial.value = None if failed else values[0]
        trial.values = None if failed or self.scalarizer is None else values
        trial.error = error or ("objective returned a non-finite value" if failed else None)
        owner = self._pending.pop(trial.number, None)
        loss = self._worst
        if not failed:
            loss = (
                self.sign * values[0]
                if self.scalarizer is None
                else self.scalarizer.loss(values, trial.team)
            )
            self._worst = max(self._worst, loss)
            self._update_best(trial)
        if self.rungs is not None and not failed:
            self.rungs.record(trial.rung, loss, trial.number)
            self._check_agreement(trial, loss)
            self._refine_around(trial)
        if owner is None:  # a promotion: the agents learn from their own results only
            return trial
        team, agent = owner
        if not math.isfinite(loss):
            loss = 1e300
        self.supervisor.observe(trial.u, loss)
        if team in self.teams or team is self.refiner:
            team.tell(agent, trial.u, loss)
            patience = self._refine_patience()
            if team is self.refiner and patience and team.stalled and team.stalled % patience == 0:
                self.events.append(
                    {
                        "event": "refine-slow",
                        "team": team.id,
                        "reason": f"{team.stalled} refinement trials in a row did not improve "
                        f"on the leader; its share of new trials falls to "
                        f"{self._refine_share():.0%}",
                    }
                )
            if team.evals % self.manager_every == 0:
                self.events += team.manage(
                    self.config.manager, self.config.strategies, self.rng, self.patience
                )
        self.told += 1
        if self.told % self.supervisor_every == 0:
            self._supervise()
        return trial

    def _check_agreement(self, trial: Trial, loss: float) -> None:
        """Pair a promotion's result with its source's; when enough pairs say the lower budget
        ranks configurations no better than chance, start new trials at the top rung."""
        source = self.trials[trial.extra["source"]] if "source" in trial.extra else None
        if source is None or source.state != "complete":
            return
        self.rungs.pair(self.sign * source.value, loss)
        cfg = self.config.fidelity
        if (
            self.skip_low
            or cfg.min_agreement is None
            or len(self.rungs.pairs) < cfg.agreement_pairs
        ):
            return
        tau = self.rungs.agreement()
        if tau <= cfg.min_agreement:
            self.skip_low = True
            self.events.append(
                {
                    "event": "fidelity",
                    "team": None,
                    "reason": f"low budgets rank {len(self.rungs.pairs)} promoted configurations "
                    f"no better than chance (Kendall tau {tau:.2f} <= {cfg.min_agreement}); "
                    "new trials start at the full budget",
                }
            )

    def _refine_around(self, trial: Trial) -> None:
        """Start the refinement team on the top-rung leader once `refine_after` configurations
        have a top-rung result, or move it to a configuration that now leads when the lead came
        from elsewhere (its own improvements it follows itself)."""
        cfg = self.config.fidelity
        top = self.rungs.top
        if cfg.refine_share == 0 or trial.rung != top:
            return
        if len(self.rungs.results[top]) < cfg.refine_after:
            return  # the best of too few full-budget results would lock the refinement in
        leader = self._best
        if self.refiner is not None and leader is not trial:
            return  # nothing new leads
        floor = cfg.refine_above
        if floor is not None and self.sign * leader.value >= self.sign * floor:
            return  # a leader no better than the baseline has nothing worth refining
        if self.refiner is not None and leader.team == self.refiner.id:
            return
        loss = next(x for x, number in self.rungs.results[top] if number == leader.number)
        region = Box.around(leader.u, cfg.refine_width)
        if self.refiner is None:
            self.refiner = self.supervisor.new_team(
                region, self.told, parent=leader.team, strategies=["trust"]
            )
        self.refiner.region = region
        for agent in self.refiner.agents:
            agent.reassign("trust", region, start=(leader.u, loss))
        self.refiner.best_u, self.refiner.best_loss = leader.u.copy(), loss
        self.refiner.last_improved = self.refiner.evals
        self.events.append(
            {
                "event": "refine",
                "team": self.refiner.id,
                "leader": leader.number,
                "reason": f"trial {leader.number} leads at the full budget ({leader.value:.4g}); "
                f"{cfg.refine_share:.0%} of new trials take local steps around it at that budget",
                "region": region.to_list(),
            }
        )

    def _supervise(self) -> None:
        events = self.supervisor.act(self.teams, self.told, self.rng)
        self.events += events
        gone = {e["team"] for e in events if e["event"] in ("retire", "reallocate", "reseed")}
        for team in self.teams:
            for team_id in gone:
                team.forget(team_id)
        if self.config.messages:
            for sender in self.teams:
                message = sender.message()
                for receiver in self.teams:
                    if receiver is not sender:
                        receiver.receive(message)
        self.events.append(
            {"event": "status", "team": None, "reason": "supervisor cycle", **self.status()}
        )

    def _values(self, value: float | Sequence[float] | None) -> list[float] | None:
        """The told value(s) as a list of floats (None when missing)."""
        if value is None:
            return None
        count = len(self.config.directions or [None])
        values = [float(v) for v in value] if isinstance(value, Sequence) else [float(value)]
        if len(values) != count:
            raise EvoloraError(
                f"tell() needs {count} value(s), one per objective in the swarm's directions, "
                f"got {len(values)}."
            )
        return values

    def pareto_front(self) -> list[Trial]:
        """The complete trials no other complete trial dominates (multi-objective swarms)."""
        if self.scalarizer is None:
            raise EvoloraError("pareto_front() needs a multi-objective swarm (set directions).")
        done = [t for t in self.trials if t.values is not None]
        return [done[i] for i in front([t.values for t in done], self.scalarizer.signs)]

    def _update_best(self, trial: Trial) -> None:
        """The incumbent: best value at the highest rung reached (any trial without fidelity)."""
        best = self._best
        if (
            best is None
            or trial.rung > best.rung
            or (trial.rung == best.rung and self.sign * trial.value < self.sign * best.value)
        ):
            self._best = trial

    # -- results -------------------------------------------------------------------------------

    @property
    def best_trial(self) -> Trial:
        """The best complete trial so far."""
        if self._best is None:
            raise EvoloraError("No trial has completed yet, so there is no best trial.")
        return self._best

    @property
    def best_value(self) -> float:
        """The best objective value so far."""
        return float(self.best_trial.value)

    @property
    def best_params(self) -> dict[str, Any]:
        """The configuration of the best trial."""
        return self.best_trial.params

    def status(self) -> dict[str, Any]:
        """Flat metrics for the live table and the teams stream."""
        return {
            "trials": len(self.trials),
            "best": None if self._best is None else self._best.value,
            **self.supervisor.status(self.teams),
            "teams": [team.summary() for team in self.teams],
            "refiner": None if self.refiner is None else self.refiner.summary(),
        }

    def optimize(
        self,
        objective: Callable[..., float],
        n_trials: int,
        executor: str | None = None,
        workers: int = 1,
        callback: Callable[[Trial], None] | None = None,
    ) -> Trial:
        """Run `n_trials` evaluations of `objective(params)` (or `objective(params, budget)` with
        multi-fidelity), up to `workers` at once through `executor` ("local", "process" or
        "ray"), asking a new trial as each one finishes; return the best trial."""
        from evolora.swarm.execution import Evaluator

        if self.horizon is None and not self.trials:
            self.set_horizon(n_trials)
        with Evaluator(objective, executor, workers) as evaluator:
            self.drive(evaluator, n_trials, callback)
        return self.best_trial

    def drive(
        self, evaluator: Any, n_trials: int, callback: Callable[[Trial], None] | None = None
    ) -> None:
        """Keep `evaluator` (an `execution.Evaluator`) full until `n_trials` trials are asked,
        telling each result as it arrives and `callback`-ing it; return when none is running."""
        while evaluator.running or len(self.trials) < n_trials:
            while evaluator.running < evaluator.workers and len(self.trials) < n_trials:
                evaluator.submit(self.ask())
            for trial, value, error in evaluator.results():
                self.tell(trial, value, error)
                if callback is not None:
                    callback(trial)


def rank_draw(losses: list[float], rng: np.random.Generator, focus: float) -> int:
    """Index drawn with probability proportional to 1 / (rank + 1)^focus (rank 0 = lowest loss)."""
    if len(losses) == 1:
        return 0
    finite = [x for x in losses if math.isfinite(x)]
    middle = float(np.median(finite)) if finite else 0.0
    keyed = np.array([x if math.isfinite(x) else middle for x in losses])
    ranks = np.empty(len(keyed))
    ranks[np.argsort(keyed, kind="stable")] = np.arange(len(keyed))
    weights = 1.0 / (ranks + 1.0) ** focus
    return int(rng.choice(len(keyed), p=weights / weights.sum()))


def _partition(dim: int, n: int) -> list[Box]:
    """`n` boxes tiling the unit cube, made by halving the largest box across its widest side."""
    boxes = [Box.unit(dim)]
    while len(boxes) < n:
        boxes.sort(key=lambda box: -box.volume())
        big = boxes.pop(0)
        boxes += list(split(big, big.center))
    return boxes
