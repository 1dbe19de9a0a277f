"""Agents with roles: each has tokens, a risk appetite that follows its recent success, a
credit history, and a pheromone field over its role's actions.

Action spaces (move m, scaled by the limonene step scale s, step factor f):
lr: m in (-2, -1, +1, +2), the hypergradient gain x f^(m s) (the gain moves the lr every
optimizer step, see steering.py: the agent chooses how fast the lr follows its hypergradient);
weight decay: (-1, +1), x f^(m s) (from 0 an increase goes to 0.01, below 0.001 a decrease goes
to 0); dropout: (-1, +1), + 0.05 m s; grad clip:
(-1, +1), x f^(m s); accumulation: (-1, +1) micro-batches; rank: (-1, +1) x 2 (prune / grow;
a prune only while the micro-batches ahead are at least `prune_recovery` x those trained, so the
re-factored adapter has time to re-learn what the truncation removed; later the agent can only
grow); data mix: one action per group, that group's share x f^s (renormalised).

Gradient analysis biases the choice through the heuristic eta: for the lr agent, a consistent
hypergradient signal (|t statistic of its recent mean| above 2: the lr is still far from where the
gradients want it) favours a larger gain, a noisy one a smaller gain, and rising gradient norms
favour a smaller gain (falling ones a larger); the clip agent is drawn toward the median recent
gradient norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from evolora.economy.config import AgentsConfig, Role
from evolora.economy.gradients import GradStats
from evolora.economy.knobs import Knobs

MOVES: dict[Role, tuple[int, ...]] = {
    Role.LR: (-2, -1, 1, 2),
    Role.WEIGHT_DECAY: (-1, 1),
    Role.DROPOUT: (-1, 1),
    Role.GRAD_CLIP: (-1, 1),
    Role.ACCUMULATION: (-1, 1),
    Role.RANK: (-1, 1),
}


def n_actions(role: Role, groups: int) -> int:
    """Size of a role's action space."""
    return groups if role is Role.DATA_MIX else len(MOVES[role])


@dataclass
class Agent:
    """One specialised agent."""

    role: Role
    tokens: float
    risk: float
    tau: np.ndarray
    credits: list[float] = field(default_factory=list)
    rebirths: int = 0

    @property
    def name(self) -> str:
        """The agent's name (its role)."""
        return self.role.value

    def state(self) -> dict:
        """JSON-ready state."""
        return {
            "role": self.role.value,
            "tokens": self.tokens,
            "risk": self.risk,
            "tau": self.tau.tolist(),
            "credits": list(self.credits),
            "rebirths": self.rebirths,
        }

    @classmethod
    def from_state(cls, state: dict) -> Agent:
        """Inverse of `state`."""
        return cls(
            Role(state["role"]),
            state["tokens"],
            state["risk"],
            np.asarray(state["tau"]),
            list(state["credits"]),
            state["rebirths"],
        )


def remember(agent: Agent, credit: float, config: AgentsConfig) -> None:
    """Record a credit and move the risk appetite toward the share of recent positive credits."""
    agent.credits = [*agent.credits, credit][-config.history :]
    success = sum(c > 0 for c in agent.credits) / len(agent.credits)
    low, high = config.risk_bounds.low, config.risk_bounds.high
    target = low + (high - low) * success
    agent.risk = (1 - config.risk_rate) * agent.risk + config.risk_rate * target


def heuristic(role: Role, knobs: Knobs, grads: GradStats, groups: int, weight: float) -> np.ndarray:
    """eta over the role's actions from gradient analysis (ones where it has no opinion)."""
    if role is Role.LR and grads.count > 2:
        moves = np.asarray(MOVES[role], dtype=float)
        opinion = math.tanh(grads.consistency / 2.0 - 1.0) - math.tanh(5.0 * grads.trend)
        return np.exp(weight * np.sign(moves) * opinion)
    if role is Role.GRAD_CLIP and grads.count > 2 and grads.median > 0:
        moves = np.asarray(MOVES[role], dtype=float)
        return np.exp(weight * moves * math.tanh(math.log(grads.median / knobs.grad_clip)))
    return np.ones(n_actions(role, groups))


def may_prune(step: int, steps: int, recovery: float) -> bool:
    """Whether a prune at micro-batch `step` of `steps` leaves the re-factored adapter at least
    `recovery` x the micro-batches trained so far to re-learn what the truncation removed."""
    return recovery == 0 or steps - step >= recovery * step


def without_prune(probs: np.ndarray) -> np.ndarray:
    """The rank agent's choice probabilities with the prune action removed (renormalised)."""
    out = probs.copy()
    out[MOVES[Role.RANK].index(-1)] = 0.0
    return out / out.sum()


def proposed_value(role: Role, action: int, knobs: Knobs, scale: float, factor: float):
    """The raw (unclipped) value an action proposes for the role's knob."""
    if role is Role.DATA_MIX:
        mix = list(knobs.mix)
        mix[action] *= factor**scale
        return mix
    move = MOVES[role][action]
    if role is Role.LR:
        return knobs.lr_gain * factor ** (move * scale)
    if role is Role.WEIGHT_DECAY:
        if move > 0:
            return max(knobs.weight_decay * factor**scale, 0.01)
        lowered = knobs.weight_decay / factor**scale
        return lowered if lowered >= 1e-3 else 0.0
    if role is Role.DROPOUT:
        return knobs.dropout + 0.05 * move * scale
    if role is Role.GRAD_CLIP:
        return knobs.grad_clip * factor ** (move * scale)
    if role is Role.ACCUMULATION:
        return knobs.accumulation + move
    return knobs.rank + 2 * move
