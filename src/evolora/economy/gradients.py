"""Gradient analysis: the recent gradient norms (before clipping), their trend and spread, and the
hypergradient signal of the learning rate.

**Hypergradient signal** (Baydin et al. 2018, "Online Learning Rate Adaptation with Hypergradient
Descent", normalised as in its multiplicative variant): with θ_t = θ_{t-1} + u_{t-1} the last
optimizer update and g_t the new gradient, dL(θ_t)/d lr ∝ g_t · u_{t-1}. The signal
h_t = -cos(g_t, u_{t-1}) lies in [-1, 1]: positive when the gradient still points along the last
step (a longer step would have lowered the loss: raise the lr), negative when the step overshot.
Its mean is small and consistent on noisy mini-batches (a few hundredths), so the lr follows it in
units of its own recent root mean square (`normalised`), as Adam scales a gradient: a consistent
signal moves the log lr by about the gain per step whatever its raw size.

**Evidence gate** (`supported`): a step's signal moves the lr only when the recent signals back it:
the t statistic of their mean, taken in the step's own direction, reaches the `evidence` level.
On noisy mini-batches the raw signal is mostly noise with a slight negative bias (greedy one-step
rules prefer small step sizes, Wu et al. 2018), so following every step walks the lr down without
a consistent reason; gated, the lr holds until the gradients agree on a direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GradStats:
    """A window of recent gradient norms and hypergradient signals the agents read."""

    window: int = 20
    norms: list[float] = field(default_factory=list)
    hyper: list[float] = field(default_factory=list)

    def observe(self, norm: float) -> None:
        """Add one optimizer step's gradient norm (non-finite norms are skipped)."""
        if np.isfinite(norm):
            self.norms = [*self.norms, float(norm)][-self.window :]

    def observe_hyper(self, signal: float) -> None:
        """Add one step's hypergradient signal (non-finite signals are skipped)."""
        if np.isfinite(signal):
            self.hyper = [*self.hyper, float(signal)][-self.window :]

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

    @property
    def alignment(self) -> float:
        """Mean recent hypergradient signal (0 when none)."""
        return float(np.mean(self.hyper)) if self.hyper else 0.0

    def normalised(self, signal: float) -> float:
        """`signal` over the root mean square of the recent signals (0 when there are none)."""
        if not self.hyper:
            return 0.0
        rms = float(np.sqrt(np.mean(np.square(self.hyper))))
        return signal / rms if rms > 0 else 0.0

    def supported(self, signal: float, evidence: float) -> float:
        """`normalised(signal)` when the recent mean, in the direction of `signal`, has a t
        statistic of at least `evidence` (0 otherwise: the lr holds)."""
        if self.directional_t(signal) < evidence:
            return 0.0
        return self.normalised(signal)

    def directional_t(self, signal: float) -> float:
        """t statistic of the mean recent signal, signed so that agreeing with `signal` is
        positive (0 with fewer than 3 signals)."""
        return float(np.sign(signal)) * float(np.sign(self.alignment)) * self.consistency

    @property
    def consistency(self) -> float:
        """|t statistic| of the mean recent hypergradient signal (0 with fewer than 3)."""
        if len(self.hyper) < 3:
            return 0.0
        values = np.asarray(self.hyper)
        spread = values.std(ddof=1) / np.sqrt(len(values))
        return float(abs(values.mean()) / max(spread, 1e-12))

    def state(self) -> dict:
        """JSON-ready state."""
        return {"window": self.window, "norms": list(self.norms), "hyper": list(self.hyper)}


def hypergradient_signal(gradient, update) -> float:
    """-cos(gradient, update) of two flat tensors (0 when either is zero)."""
    denominator = float(gradient.norm() * update.norm())
    if denominator <= 0.0:
        return 0.0
    return -float(gradient @ update) / denominator
