"""Performance and credit: how loss improvement becomes tokens.

`performance` is the economy's performance metric: 1 - log(1 + loss) / log(1 + reference), which
falls strictly as the loss rises, for every loss >= 0 (it is 0 at the reference loss).

**Damped-trend residual credit, per unit of compute.** Every decision round measures the
log-loss of a fixed probe batch (train split) and the micro-batch at which it did. The previous
`history` measurements give a linear trend per micro-batch (least-squares slope); the expected
next value is the last one plus `damping` x that slope x the micro-batches the round took. The
round's credit is expected minus observed: positive when the probe fell faster than its recent
trend for the data it consumed (so an agent that lengthens rounds, e.g. by accumulating more
micro-batches per step, is not paid for the extra data). The credit of a round is split equally
among the agents whose proposals were applied in it.
"""

from __future__ import annotations

import math

import numpy as np


def performance(loss: float, reference: float) -> float:
    """1 - log1p(loss) / log1p(reference): strictly decreasing in `loss` for every loss >= 0."""
    return 1.0 - math.log1p(loss) / math.log1p(reference)


def expected_next(history: list[float], at: list[float], now: float, damping: float) -> float:
    """The last value plus `damping` x the least-squares slope of `history` over the positions
    `at` (micro-batches) x the distance from the last position to `now` (len >= 1)."""
    if len(history) < 2:
        return history[-1]
    slope = float(np.polyfit(np.asarray(at, dtype=float), np.asarray(history), 1)[0])
    return history[-1] + damping * slope * (now - at[-1])


def trend_residual(
    history: list[float], at: list[float], observed: float, now: float, damping: float
) -> float:
    """Credit of a round: the probe log-loss expected at micro-batch `now` minus the observed."""
    return expected_next(history, at, now, damping) - observed


def split_credit(credit: float, agents: list[str]) -> dict[str, float]:
    """The round's credit shared equally among the agents that acted in it."""
    if not agents:
        return {}
    share = credit / len(agents)
    return {name: share for name in agents}
