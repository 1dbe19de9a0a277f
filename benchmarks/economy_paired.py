"""Paired comparison of two methods run on the same seeds (lower loss is better)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def paired_summary(method: list[float], baseline: list[float], level: float = 0.95) -> dict:
    """Per-seed differences `method - baseline`, their mean, sample std, Student-t interval at
    `level` for the mean, and how many seeds `method` wins (strictly lower), ties and loses."""
    if len(method) != len(baseline) or len(method) < 2:
        raise ValueError("paired_summary needs two lists of the same length, at least 2 seeds")
    diffs = np.asarray(method, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(diffs)
    mean = float(diffs.mean())
    std = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return {
        "diffs": [float(d) for d in diffs],
        "mean": mean,
        "std": std,
        "level": level,
        "interval": [mean - half, mean + half],
        "wins": int((diffs < 0).sum()),
        "ties": int((diffs == 0).sum()),
        "losses": int((diffs > 0).sum()),
    }
