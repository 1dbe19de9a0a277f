"""Pheromone field over one agent's actions: deposited by reward, evaporating, read in choice.

Choice probability (ACO): p(a) = (1 - eps) * tau_a^alpha * eta_a^beta / sum + eps / n, where
tau is the pheromone, eta the gradient heuristic of the agent's role and eps the exploration rate.

The reward deposited is a round's credit in units of the spread (root mean square) of the credits
of recent rounds (`signal`): raw credits are small and their scale drifts as the loss flattens,
so a fixed tokens-per-credit deposit either swamps the trails with noise or never moves them; in
spread units an action is marked only when its round beat the trend by more than credits usually
vary.
"""

from __future__ import annotations

import numpy as np


def evaporate(tau: np.ndarray, rate: float, floor: float) -> np.ndarray:
    """Each trail keeps (1 - rate) of itself, never falling below `floor`."""
    return np.maximum(floor, (1.0 - rate) * tau)


def signal(credit: float, recent: list[float]) -> float:
    """`credit` over the root mean square of `recent` credits (0 with fewer than 2 of them)."""
    if len(recent) < 2:
        return 0.0
    spread = float(np.sqrt(np.mean(np.square(recent))))
    return credit / spread if spread > 0 else 0.0


def deposit(tau: np.ndarray, action: int, reward: float, per_reward: float) -> np.ndarray:
    """Add `per_reward` x reward to the trail of `action` (only a positive reward deposits)."""
    out = tau.copy()
    out[action] += per_reward * max(0.0, reward)
    return out


def probabilities(
    tau: np.ndarray, eta: np.ndarray, alpha: float, beta: float, exploration: float
) -> np.ndarray:
    """Choice probabilities from pheromone and heuristic, mixed with uniform exploration."""
    weight = np.power(tau, alpha) * np.power(eta, beta)
    weight = weight / weight.sum()
    return (1.0 - exploration) * weight + exploration / len(tau)
