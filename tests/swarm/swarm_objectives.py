"""Objectives the swarm tests import by `module:function` (this folder is on sys.path)."""

from __future__ import annotations

import math


def bowl(params: dict) -> float:
    """A quadratic bowl with its minimum 0 at x = 0.3, y = -1.2."""
    return (params["x"] - 0.3) ** 2 + (params["y"] + 1.2) ** 2


def flaky(params: dict) -> float:
    """The bowl, but it raises for x > 1 and returns NaN for x < -1."""
    if params["x"] > 1:
        raise RuntimeError("diverged")
    if params["x"] < -1:
        return math.nan
    return bowl(params)
