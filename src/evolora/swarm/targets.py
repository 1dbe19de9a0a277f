"""Fixed-target measures of search runs, as COCO reports them (Hansen et al., "COCO: performance
assessment", 2021): how many runs reach a target value, and the expected running time (ERT) to
reach it.

A run is a list of (value, cost) per trial, in order, values maximised (a trial whose value does
not count, such as a reduced-budget one, carries -inf). ERT charges every run its cost up to the
first trial that reaches the target, or its whole cost when it never does, and divides the sum by
the number of runs that reached it: the cost a restarted search spends per success. It is
infinite when no run reaches the target, and it never rewards a run for being cheap and failing
(a median that charges a miss its whole cost does: a cheaper failed run lowers it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

Run = Sequence[tuple[float, float]]  # (value, cost) per trial


@dataclass(frozen=True)
class Hit:
    """Where one run first reached the target (trials and cost inf when it never did), and what
    the whole run spent."""

    trials: float
    cost: float
    total_trials: int
    total_cost: float

    @property
    def reached(self) -> bool:
        """Whether the run reached the target."""
        return math.isfinite(self.trials)


@dataclass(frozen=True)
class FixedTarget:
    """The fixed-target summary of several runs of one method."""

    runs: int
    successes: int
    ert_trials: float  # inf when no run reached the target
    ert_cost: float

    @property
    def success_rate(self) -> float:
        """The share of runs that reached the target."""
        return self.successes / self.runs if self.runs else 0.0

    def record(self) -> dict[str, float]:
        """The summary as a JSON-ready dict (with the success rate)."""
        return {**asdict(self), "success_rate": self.success_rate}


def first_hit(run: Run, target: float) -> Hit:
    """The trial (1-based) and cumulative cost at which `run` first reaches `target`."""
    cost = 0.0
    hit_trials, hit_cost = math.inf, math.inf
    for index, (value, spent) in enumerate(run, start=1):
        cost += spent
        if not math.isfinite(hit_trials) and value >= target:
            hit_trials, hit_cost = index, cost
    return Hit(hit_trials, hit_cost, len(run), cost)


def fixed_target(runs: Sequence[Run], target: float) -> FixedTarget:
    """Success count and ERT (in trials and in cost) of `runs` for `target`."""
    return from_hits([first_hit(run, target) for run in runs])


def from_hits(hits: Sequence[Hit]) -> FixedTarget:
    """Success count and ERT of runs already reduced to their first hits."""
    successes = sum(hit.reached for hit in hits)
    if successes == 0:
        return FixedTarget(len(hits), 0, math.inf, math.inf)
    spent_trials = sum(hit.trials if hit.reached else hit.total_trials for hit in hits)
    spent_cost = sum(hit.cost if hit.reached else hit.total_cost for hit in hits)
    return FixedTarget(len(hits), successes, spent_trials / successes, spent_cost / successes)


def ert_ratio(mine: float, other: float) -> float:
    """One ERT over another: inf when only `other` is finite (only its runs reached the
    target), 0 when only `mine` is, nan when neither is."""
    if math.isinf(mine) and math.isinf(other):
        return math.nan
    if math.isinf(other):
        return 0.0
    return mine / other


def ert_ratio_bootstrap(
    mine: Sequence[Hit], other: Sequence[Hit], rng: np.random.Generator, resamples: int = 2000
) -> np.ndarray:
    """`ert_ratio` (cost) over bootstrap resamples: each draws each method's runs with
    replacement (nan where neither resample reaches the target)."""
    ratios = np.empty(resamples)
    for index in range(resamples):
        a = [mine[i] for i in rng.integers(len(mine), size=len(mine))]
        b = [other[i] for i in rng.integers(len(other), size=len(other))]
        ratios[index] = ert_ratio(from_hits(a).ert_cost, from_hits(b).ert_cost)
    return ratios


def interval(ratios: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    """The central `level` interval of the ratios that are not nan (its ends may be 0 or inf;
    nan, nan when all are nan)."""
    known = ratios[~np.isnan(ratios)]
    if known.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(known, [tail, 100 - tail], method="nearest")
    return float(low), float(high)
