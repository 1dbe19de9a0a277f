"""The predictive stability monitor: a Lyapunov exponent of the hidden-state trajectory.

Over a moving window of the last W final hidden states (unit-normalised), the largest Lyapunov
exponent is estimated as Rosenstein et al. (1993) do: every state x_i gets its nearest neighbour
x_j on the trajectory (|i − j| > 1), and

    λ = mean_i log( |x_(i+1) − x_(j+1)| / |x_i − x_j| )          (nats per generated token)

is how fast nearby trajectories separate. Classes: `divergent` (non-finite states or λ above
`divergent_lyapunov`, default 1: an e-fold per token), `periodic` (at least `recurrence_share` of
the states recur: a neighbour closer than `recurrence_distance` — repetition loops), `chaotic`
(λ > lyapunov_threshold), else `stable`. The detector thresholds are knobs so they can be
calibrated on labelled generations (benchmarks/reso_stability.py does, on a split it then does
not score). Entropy collapse (the next-token
entropy below `entropy_floor` over half a window) is flagged too. The trend of λ over the last
`predictive_horizon` readings is extrapolated that many steps ahead; crossing the threshold gives
an early warning. With `auto_temperature_adjust`, periodic or collapsed generation is heated
(T ← max(T, 0.3) φ, to leave the loop) and chaotic or divergent generation cooled (T ← T / φ, or
the floor). Cost: O(W² D) per token for the neighbour search (W = 16 by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import torch

from evolora.reso.primes import PHI
from evolora.reso.sections import StabilityConfig


class StabilityClass(str, Enum):
    """The four regimes the monitor tells apart."""

    STABLE = "stable"
    PERIODIC = "periodic"
    CHAOTIC = "chaotic"
    DIVERGENT = "divergent"


@dataclass(frozen=True)
class Reading:
    """One step's verdict: exponent, class, predicted exponent, collapse flag and any warning."""

    lyapunov: float
    kind: StabilityClass
    predicted: float
    collapsed: bool
    warning: str | None

    @property
    def degenerate(self) -> bool:
        """Whether this reading calls for intervention (anything but stable, or collapse)."""
        return self.collapsed or self.kind != StabilityClass.STABLE


def lyapunov(states: torch.Tensor, recur: float = 0.05) -> tuple[float, float]:
    """(λ, share of states with a recurrence) of a trajectory (W, D); a state recurs when its
    nearest neighbour on the unit sphere is closer than `recur`. See the module docstring."""
    x = states.float()
    x = x / x.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    w = x.shape[0]
    if w < 4:
        return 0.0, 0.0
    dist = torch.cdist(x[:-1], x[:-1])  # (W-1, W-1)
    idx = torch.arange(w - 1)
    dist[(idx[:, None] - idx[None, :]).abs() <= 1] = float("inf")
    near, j = dist.min(dim=1)
    ok = torch.isfinite(near)
    if not bool(ok.any()):
        return 0.0, 0.0
    i = idx[ok]
    d0 = near[ok]
    d1 = (x[i + 1] - x[j[ok] + 1]).norm(dim=-1)
    recurrence = float((d0 < recur).float().mean())
    lam = float(torch.log((d1 + 1e-4) / (d0 + 1e-4)).mean())
    return lam, recurrence


class StabilityMonitor:
    """Watches one generation step by step; see the module docstring."""

    def __init__(self, config: StabilityConfig) -> None:
        self.config = config
        self.states: list[torch.Tensor] = []
        self.entropies: list[float] = []
        self.history: list[float] = []

    def observe(self, hidden: torch.Tensor, entropy: float) -> Reading:
        """Record the newest final hidden state (D,) and next-token entropy; return the verdict."""
        cfg = self.config
        finite = bool(torch.isfinite(hidden).all()) and math.isfinite(entropy)
        self.states = [*self.states, hidden.detach().float().cpu()][-cfg.window :]
        self.entropies = [*self.entropies, entropy][-cfg.window :]
        if not finite:
            self.history.append(float("inf"))
            return Reading(float("inf"), StabilityClass.DIVERGENT, float("inf"), False,
                           "non-finite hidden state or logits: generation diverged")
        lam, recurrence = lyapunov(torch.stack(self.states), cfg.recurrence_distance)
        self.history.append(lam)
        recent = self.entropies[-max(2, cfg.window // 2) :]
        collapsed = len(recent) >= max(2, cfg.window // 2) and max(recent) < cfg.entropy_floor
        if lam > cfg.divergent_lyapunov:
            kind = StabilityClass.DIVERGENT
        elif recurrence >= cfg.recurrence_share:
            kind = StabilityClass.PERIODIC
        elif lam > cfg.lyapunov_threshold:
            kind = StabilityClass.CHAOTIC
        else:
            kind = StabilityClass.STABLE
        predicted = self._extrapolate()
        warning = None
        if kind == StabilityClass.DIVERGENT:
            warning = f"divergent trajectory (lyapunov above {cfg.divergent_lyapunov} per token)"
        elif kind == StabilityClass.PERIODIC:
            warning = "repetition loop: the hidden states recur"
        elif collapsed:
            warning = f"entropy collapse (below {cfg.entropy_floor} nats)"
        elif kind == StabilityClass.CHAOTIC:
            warning = f"chaotic trajectory (lyapunov above {cfg.lyapunov_threshold})"
        elif predicted > cfg.lyapunov_threshold:
            warning = f"instability predicted within {cfg.predictive_horizon} tokens"
        return Reading(lam, kind, predicted, collapsed, warning)

    def _extrapolate(self) -> float:
        h = self.config.predictive_horizon
        recent = [v for v in self.history[-h:] if math.isfinite(v)]
        if len(recent) < 2:
            return recent[-1] if recent else 0.0
        slope = (recent[-1] - recent[0]) / (len(recent) - 1)
        return recent[-1] + slope * h

    def stability(self) -> float:
        """A 0..1 stability score of the latest exponent (1 = very stable)."""
        if not self.history:
            return 1.0
        lam = self.history[-1]
        if not math.isfinite(lam):
            return 0.0
        return 1.0 / (1.0 + math.exp((lam - self.config.lyapunov_threshold) * 10))

    def suggested_temperature(self, current: float, reading: Reading | None = None) -> float:
        """The temperature the monitor recommends after `reading` (default: the latest state)."""
        cfg = self.config
        if reading is None:
            return current
        if reading.kind == StabilityClass.DIVERGENT:
            return cfg.min_temperature
        if reading.kind == StabilityClass.PERIODIC or reading.collapsed:
            return min(cfg.max_temperature, max(current, 0.3) * PHI)
        if reading.kind == StabilityClass.CHAOTIC:
            return max(cfg.min_temperature, current / PHI)
        return current
