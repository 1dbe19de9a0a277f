"""The market: a price per action, a per-round action budget (scarcity), inflation and volatility.

Each round: the price level grows by `inflation`; agents that want to act bid
`risk x tokens`; the `budget` highest bids that can pay win (ties by name); excess demand
(bidders beyond the budget, over the budget) raises the scarcity multiplier; each role's price is
base x level x (1 + scarcity x excess) x exp(volatility x z) with z ~ N(0, 1). Winners pay their
role's price. Credit is paid as reward_scale x credit x level (a negative credit costs
penalty_fraction of that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evolora.economy.config import MarketConfig


@dataclass
class Market:
    """Price level, current prices per role, and the log price changes of recent rounds."""

    level: float = 1.0
    prices: dict[str, float] = field(default_factory=dict)
    changes: list[float] = field(default_factory=list)

    def state(self) -> dict:
        """JSON-ready state."""
        return {"level": self.level, "prices": dict(self.prices), "changes": list(self.changes)}


def clear(
    bids: dict[str, float], costs: dict[str, float], tokens: dict[str, float], budget: int
) -> list[str]:
    """The agents allowed to act: the `budget` highest bids among those who can pay their cost."""
    able = [name for name in bids if tokens[name] >= costs[name]]
    return sorted(able, key=lambda name: (-bids[name], name))[:budget]


def reprice(
    market: Market, roles: list[str], demand: int, config: MarketConfig, rng: np.random.Generator
) -> None:
    """Next round's prices from inflation, excess demand over the budget and a random shock."""
    market.level *= 1.0 + config.inflation
    excess = max(0, demand - config.budget) / config.budget
    for role in roles:
        shock = float(np.exp(config.volatility * rng.standard_normal()))
        new = config.base_price * market.level * (1.0 + config.scarcity * excess) * shock
        old = market.prices.get(role, new)
        market.changes = [*market.changes, float(np.log(new / old))][-20:]
        market.prices[role] = new


def volatility(market: Market) -> float:
    """Standard deviation of the recent log price changes."""
    return float(np.std(market.changes)) if len(market.changes) > 1 else 0.0


def payment(credit: float, market: Market, config: MarketConfig) -> float:
    """Tokens an agent receives (negative: pays) for a credit share."""
    value = config.reward_scale * credit * market.level
    return value if value >= 0 else config.penalty_fraction * value
