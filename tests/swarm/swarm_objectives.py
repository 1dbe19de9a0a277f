"""Objectives the swarm tests import by `module:function` (this folder is on sys.path)."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path


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


def dies_once(params: dict) -> float:
    """The bowl, but the first call anywhere kills its own worker process (SIGKILL): the
    file named by $SWARM_DIE_MARKER records that it happened. Never kills the test process
    itself ($SWARM_TEST_PID)."""
    marker = Path(os.environ["SWARM_DIE_MARKER"])
    if os.getpid() != int(os.environ["SWARM_TEST_PID"]) and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return bowl(params)
