"""Energy settlement: the ticket, the cost model of an episode, revenue and ROI.

ROI is a ratio, revenue / cost, not a difference: an organelle with ROI 2 earns twice what its
compute costs. Energy never goes below zero nor above the cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from evolora.ecology.config import EnergyConfig, EnvironmentConfig


@dataclass(frozen=True)
class Compute:
    """What one episode (or one learning step) actually consumed."""

    flops: float
    seconds: float = 0.0
    adapter_params: int = 0


@dataclass(frozen=True)
class Settlement:
    """The books of one settled episode."""

    revenue: float
    cost: float
    net: float
    roi: float


def compute_cost(compute: Compute, energy: EnergyConfig) -> float:
    """Energy cost of the compute: FLOPs, latency and adapter size, times `cost_scale`."""
    raw = (
        energy.flop_weight * compute.flops / 1e9
        + energy.latency_weight * compute.seconds
        + energy.param_weight * compute.adapter_params / 1e6
    )
    return energy.cost_scale * raw


def settle_episode(
    price: float, reward: float, success: bool, cost: float, env: EnvironmentConfig
) -> Settlement:
    """Revenue = price x reward (+ success bonus); a failure pays its cost times the multiplier."""
    revenue = price * reward + (env.success_reward_bonus if success else 0.0)
    charged = cost if success else cost * env.failure_cost_multiplier
    return Settlement(
        revenue=revenue, cost=charged, net=revenue - charged, roi=roi(revenue, charged)
    )


def roi(revenue: float, cost: float) -> float:
    """Return on investment as a ratio; infinite cost-free revenue is reported as revenue itself."""
    return revenue / cost if cost > 0 else revenue


def apply(energy_now: float, delta: float, cap: float) -> float:
    """New energy after a change, clipped to [0, cap]."""
    return min(cap, max(0.0, energy_now + delta))


def pay_ticket(energy_now: float, ticket: float) -> tuple[float, bool]:
    """Charge the generation's ticket; an organelle that cannot pay skips and keeps its energy."""
    if energy_now < ticket:
        return energy_now, False
    return energy_now - ticket, True
