"""Paired comparisons shared by the strategies and their benchmarks (numpy and the standard
library only, so the package imports without scipy)."""

from __future__ import annotations

import math

import numpy as np

INTERVALS = ("normal", "t")
Z95 = 1.959964  # two-sided 95 % normal quantile


def t_coverage(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with `df` (a positive integer) degrees of freedom."""
    if t <= 0:
        return 0.0
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    # Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df): finite sums in cos(theta).
    term, total = 1.0, 1.0
    for k in range(1 + df % 2, df - 1, 2):
        term *= c2 * k / (k + 1)
        total += term
    if df % 2 == 0:
        return math.sin(theta) * total
    if df == 1:
        return 2.0 * theta / math.pi
    return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)


def t_quantile(level: float, df: int) -> float:
    """The t with P(|T| <= t) = `level` for Student's t with `df` degrees of freedom."""
    if not 0 < level < 1 or df < 1:
        raise ValueError("t_quantile needs 0 < level < 1 and df >= 1")
    low, high = 0.0, 1.0
    while t_coverage(high, df) < level:
        low, high = high, 2.0 * high
    for _ in range(100):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_coverage(mid, df) < level else (low, mid)
    return 0.5 * (low + high)


def paired_difference(a: list[float], b: list[float], interval: str = "normal") -> dict:
    """Mean of a - b over paired items, its sample std and standard error, and its two-sided
    95 % interval (`ci95`) from the normal quantile (`interval="normal"`, for many items) or
    Student's t with n - 1 degrees of freedom (`"t"`, for a few seeds)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if len(a) != len(b):
        raise ValueError("paired_difference needs two lists of the same length")
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(diff)
    mean = float(diff.mean()) if n else 0.0
    std = float(diff.std(ddof=1)) if n > 1 else 0.0
    se = std / math.sqrt(n) if n > 1 else 0.0
    quantile = Z95 if interval == "normal" or n < 2 else t_quantile(0.95, n - 1)
    return {
        "mean": mean,
        "std": std,
        "se": se,
        "ci95": [mean - quantile * se, mean + quantile * se],
        "n": n,
        "interval": interval,
    }
