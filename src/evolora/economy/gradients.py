"""Gradient analysis: the recent gradient norms (before clipping), their trend and spread."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GradStats:
    """A window of recent gradient norms and statistics the agents read."""

    window: int = 20
    norms: list[float] = field(default_factory=list)

    def observe(self, norm: float) -> None:
        """Add one optimizer step's gradient norm (non-finite norms are skipped)."""
        if np.isfinite(norm):
            self.norms = [*self.norms, float(norm)][-self.window :]

    @property
    def count(self) -> int:
        """Norms in the window."""
        return len(self.norms)

    @property
    def trend(self) -> float:
        """Least-squares slope of log grad norm per step (0 with fewer than 3 norms)."""
        if self.count < 3:
            return 0.0
        logs = np.log(np.maximum(np.asarray(self.norms), 1e-12))
        return float(np.polyfit(np.arange(self.count), logs, 1)[0])

    @property
    def median(self) -> float:
        """Median recent grad norm (0 when empty)."""
        return float(np.median(self.norms)) if self.norms else 0.0

    @property
    def variation(self) -> float:
        """Coefficient of variation of the recent norms (0 when fewer than 2)."""
        if self.count < 2:
            return 0.0
        values = np.asarray(self.norms)
        return float(values.std() / max(values.mean(), 1e-12))

    def state(self) -> dict:
        """JSON-ready state."""
        return {"window": self.window, "norms": list(self.norms)}
