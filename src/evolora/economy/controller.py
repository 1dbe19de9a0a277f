"""The economy: one decision round reads as the mechanism list it runs.

    settle      credit the last round's proposals (damped-trend residual of the probe loss per
                micro-batch), pay them, repay debts, deposit pheromone (by the credit over the
                spread of recent credits), update risk appetites
    modulate    move the four neurochemical levels
    evaporate   every pheromone trail
    trade       needy agents borrow from rich ones; bankrupt agents are reborn
    decide      agents that dare bid; the market clears the budget; winners pay and choose an
                action from pheromone x gradient heuristic; the knob changes (clipped to bounds)
    reprice     inflation, scarcity and a volatility shock

No torch here: `Steering` (steering.py) applies the knobs to the optimizer, model and data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from evolora.economy import anxiety as anx
from evolora.economy import market as mkt
from evolora.economy import neurochem as neuro
from evolora.economy import pheromones as ph
from evolora.economy import trading
from evolora.economy.agents import (
    Agent,
    heuristic,
    may_prune,
    n_actions,
    proposed_value,
    remember,
    without_prune,
)
from evolora.economy.config import EconomyConfig, Role
from evolora.economy.credit import split_credit, trend_residual
from evolora.economy.gradients import GradStats
from evolora.economy.knobs import Knobs, clip_value, knob_of
from evolora.economy.search import LrSearch

PANIC = "panic"


@dataclass
class Proposal:
    """One applied change: who asked, what it was, what was applied, and what it earned."""

    round: int
    step: int
    agent: str
    action: int
    before: object
    proposed: object
    applied: object
    clipped: bool
    price: float
    credit: float | None = None
    paid: float | None = None
    knob: str = ""

    def record(self) -> dict:
        """JSON-ready record."""
        return asdict(self)


class Economy:
    """Agents, market, loans, modulators, anxiety and the knobs they steer."""

    def __init__(self, config: EconomyConfig, groups: list[str]) -> None:
        self.config = config
        self.groups = groups
        self.knobs = Knobs.initial(config, len(groups))
        roles = [r for r in config.agents.roles if r is not Role.DATA_MIX or len(groups) > 1]
        self.agents = {r.value: self._newborn(r) for r in roles}
        self.market = mkt.Market(prices={n: config.market.base_price for n in self.agents})
        self.loans: list[trading.Loan] = []
        self.neuro = neuro.Neuro()
        self.anxiety = anx.Anxiety()
        self.grads = GradStats(window=2 * config.agents.decide_every)
        self.search = LrSearch(active=config.search.enabled and Role.LR.value in self.agents)
        self.probe: list[float] = []
        self.probe_at: list[int] = []  # the micro-batch of each probe measurement
        self.credits: list[float] = []  # recent credits of rounds in which agents acted
        self.probe_stagnant = 0  # rounds since the probe log-loss last reached a new best
        self.pending: list[Proposal] = []
        self.outcomes: list[bool] = []
        self.round = 0
        self.demand = 0
        self.boost_rounds = 0
        self.rng = np.random.default_rng([config.seed, 11])

    def _newborn(self, role: Role, tokens: float | None = None) -> Agent:
        size = n_actions(role, len(self.groups))
        return Agent(
            role,
            self.config.market.initial_tokens if tokens is None else tokens,
            self.config.agents.risk_initial,
            np.full(size, self.config.pheromones.initial),
        )

    # -- settlement ----------------------------------------------------------------------------

    def settle(self, probe_loss: float, micro: int) -> dict:
        """Credit and pay the pending proposals from the probe log-loss measured at micro-batch
        `micro`; then modulate, evaporate, trade and rebirth. Returns the settled proposals,
        trades and bankruptcies."""
        cfg = self.config
        history = self.probe[-cfg.market.credit_history :]
        at = self.probe_at[-cfg.market.credit_history :]
        damping = cfg.market.trend_damping
        credit = trend_residual(history, at, probe_loss, micro, damping) if history else 0.0
        tokens = {n: a.tokens for n, a in self.agents.items()}
        shares = split_credit(credit, [p.agent for p in self.pending if p.agent in self.agents])
        strength = ph.signal(credit, self.credits)
        if self.pending:
            self.credits = [*self.credits, credit][-cfg.pheromones.spread_window :]
        trades: list[dict] = []
        for proposal in self.pending:
            if proposal.agent not in self.agents:
                continue
            agent = self.agents[proposal.agent]
            share = shares[proposal.agent]
            paid = mkt.payment(share, self.market, cfg.market)
            tokens[agent.name] += paid
            trades += [
                {**t, "kind": "repay"}
                for t in trading.repay(self.loans, tokens, agent.name, paid, cfg.market.repay_share)
            ]
            if cfg.pheromones.enabled:
                agent.tau = ph.deposit(agent.tau, proposal.action, strength, cfg.pheromones.deposit)
            remember(agent, share, cfg.agents)
            proposal.credit, proposal.paid = share, paid
            self.outcomes = [*self.outcomes, share > 0][-cfg.agents.history :]
        improved = bool(history) and probe_loss < history[-1]
        self.probe_stagnant = (
            0 if probe_loss < min(self.probe, default=np.inf) else (self.probe_stagnant + 1)
        )
        self.probe.append(probe_loss)
        self.probe_at.append(micro)
        self.neuro = neuro.update(
            self.neuro,
            {
                "myrcene": float(improved),
                "limonene": float(not improved),
                "pinene": float(np.mean(self.outcomes)) if self.outcomes else 0.5,
                "linalool": 1.0 - min(1.0, self.grads.variation),
            },
            cfg.neuro,
        )
        if cfg.pheromones.enabled:
            rate = neuro.evaporation(self.neuro, cfg.pheromones.evaporation)
            for agent in self.agents.values():
                agent.tau = ph.evaporate(agent.tau, rate, cfg.pheromones.floor)
        if cfg.market.trading:
            lent, loans = trading.lend(tokens, self.market.prices, cfg.market)
            trades += [{**t, "kind": "loan"} for t in lent]
            self.loans += loans
        reborn = trading.bankrupt(tokens)
        for name in reborn:
            trading.write_off(self.loans, name)
            rebirths = self.agents[name].rebirths + 1
            self.agents[name] = self._newborn(self.agents[name].role, cfg.market.rebirth_tokens)
            self.agents[name].rebirths = rebirths
            tokens[name] = cfg.market.rebirth_tokens
        for name, value in tokens.items():
            self.agents[name].tokens = value
        settled, self.pending = self.pending, []
        return {"credit": credit, "proposals": settled, "trades": trades, "bankrupt": reborn}

    # -- decision ------------------------------------------------------------------------------

    def exploration(self) -> float:
        """Current exploration rate (pinene, plus the boost after a panic)."""
        boost = self.config.anxiety.explore_boost if self.boost_rounds > 0 else 0.0
        return min(1.0, neuro.exploration(self.neuro, self.config.neuro) + boost)

    def decide(self, step: int) -> list[Proposal]:
        """Run one market round; return the proposals applied to `knobs` (pending credit)."""
        cfg = self.config
        self.round += 1
        bids = {n: a.risk * a.tokens for n, a in self.agents.items() if self.rng.random() < a.risk}
        self.demand = len(bids)
        tokens = {n: a.tokens for n, a in self.agents.items()}
        winners = mkt.clear(bids, self.market.prices, tokens, cfg.market.budget)
        eps, scale = self.exploration(), neuro.step_scale(self.neuro)
        proposals = []
        for name in winners:
            agent = self.agents[name]
            price = self.market.prices[name]
            agent.tokens -= price
            eta = heuristic(
                agent.role, self.knobs, self.grads, len(self.groups), cfg.agents.grad_weight
            )
            tau = agent.tau if cfg.pheromones.enabled else np.ones_like(agent.tau)
            probs = ph.probabilities(tau, eta, cfg.pheromones.alpha, cfg.pheromones.beta, eps)
            recovery = cfg.agents.prune_recovery
            if agent.role is Role.RANK and not may_prune(step, cfg.workload.steps, recovery):
                probs = without_prune(probs)
            action = int(self.rng.choice(len(probs), p=probs))
            raw = proposed_value(agent.role, action, self.knobs, scale, cfg.agents.step_factor)
            proposals.append(self.apply(agent.role, raw, step, name, action, price))
        mkt.reprice(self.market, list(self.agents), len(bids), cfg.market, self.rng)
        self.boost_rounds = max(0, self.boost_rounds - 1)
        self.pending = proposals
        return proposals

    def apply(
        self,
        role: Role,
        raw,
        step: int,
        agent: str,
        action: int = -1,
        price: float = 0.0,
        knob: str | None = None,
    ) -> Proposal:
        """Clip `raw` to the bounds of `knob` (default: the role's knob), set it, and return the
        logged proposal."""
        field = knob or knob_of(role)
        before = getattr(self.knobs, field)
        value, clipped = clip_value(field, raw, self.config)
        setattr(self.knobs, field, value)
        return Proposal(
            self.round, step, agent, action, before, raw, value, clipped, price, knob=field
        )

    # -- anxiety -------------------------------------------------------------------------------

    def observe_validation(self, val_loss: float, step: int) -> dict:
        """Update anxiety from a validation loss; on panic back the lr off and boost exploration.
        Returns the outcome, and whether to roll back to the best checkpoint."""
        cfg = self.config.anxiety
        outcome = anx.observe(self.anxiety, val_loss, cfg)
        event = {"outcome": outcome.value, "panic": False, "rollback": False, "proposal": None}
        threshold = neuro.panic_threshold(self.neuro, cfg.threshold)
        severe = cfg.severe > 0 and not val_loss <= self.anxiety.best * (1 + cfg.severe)
        if cfg.enabled and (self.anxiety.level > threshold or severe):
            event["panic"] = True
            event["rollback"] = not val_loss <= self.anxiety.best * (1 + cfg.rollback_margin)
            event["proposal"] = self.apply(
                Role.LR, self.knobs.lr * cfg.lr_backoff, step, PANIC, knob="lr"
            )
            self.boost_rounds = cfg.explore_rounds
            anx.calm_after_panic(self.anxiety)
        return event

    # -- persistence ---------------------------------------------------------------------------

    def state(self) -> dict:
        """Everything needed to continue exactly (JSON-ready)."""
        return {
            "knobs": self.knobs.state(),
            "agents": {n: a.state() for n, a in self.agents.items()},
            "market": self.market.state(),
            "loans": [loan.state() for loan in self.loans],
            "neuro": self.neuro.state(),
            "anxiety": self.anxiety.state(),
            "grads": self.grads.state(),
            "search": self.search.state(),
            "probe": list(self.probe),
            "probe_at": list(self.probe_at),
            "credits": list(self.credits),
            "probe_stagnant": self.probe_stagnant,
            "pending": [p.record() for p in self.pending],
            "outcomes": list(self.outcomes),
            "round": self.round,
            "demand": self.demand,
            "boost_rounds": self.boost_rounds,
            "rng": self.rng.bit_generator.state,
        }

    def load_state(self, state: dict) -> None:
        """Inverse of `state`."""
        self.knobs = Knobs(**state["knobs"])
        self.agents = {n: Agent.from_state(s) for n, s in state["agents"].items()}
        self.market = mkt.Market(**state["market"])
        self.loans = [trading.Loan(**s) for s in state["loans"]]
        self.neuro = neuro.Neuro(**state["neuro"])
        self.anxiety = anx.Anxiety.from_state(state["anxiety"])
        self.grads = GradStats(**state["grads"])
        self.search = LrSearch(**state["search"])
        self.probe = list(state["probe"])
        self.probe_at = list(state["probe_at"])
        self.credits = list(state["credits"])
        self.probe_stagnant = state["probe_stagnant"]
        self.pending = [Proposal(**p) for p in state["pending"]]
        self.outcomes = list(state["outcomes"])
        self.round = state["round"]
        self.demand = state["demand"]
        self.boost_rounds = state["boost_rounds"]
        self.rng.bit_generator.state = state["rng"]
