"""Pheromone field over one agent's actions: deposited by reward, evaporating, read in choice.

Choice probability (ACO): p(a) = (1 - eps) * tau_a^alpha * eta_a^beta / sum + eps / n, where
tau is the pheromone, eta the gradient heuristic of the agent's role and eps the exploration rate.
"""

from __future__ import annotations

import numpy as np


def evaporate(tau: np.ndarray, rate: float, floor: float) -> np.ndarray:
    """Each trail keeps (1 - rate) of itself, never falling below `floor`."""
    return np.maximum(floor, (1.0 - rate) * tau)


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
