"""Anxiety: rises when validation loss stagnates or regresses, falls when it improves."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum

from evolora.economy.config import AnxietyConfig


class Outcome(str, Enum):
    """How a validation compares with the best (and the previous) one."""

    IMPROVED = "improved"
    STAGNANT = "stagnant"
    REGRESSED = "regressed"


@dataclass
class Anxiety:
    """Anxiety level, the best and previous validation loss, and validations since the best."""

    level: float = 0.0
    best: float = math.inf
    last: float = math.inf
    stagnant: int = 0

    def state(self) -> dict:
        """JSON-ready state (inf as None)."""
        return {k: (None if v == math.inf else v) for k, v in asdict(self).items()}

    @classmethod
    def from_state(cls, state: dict) -> Anxiety:
        """Inverse of `state`."""
        return cls(**{k: (math.inf if v is None else v) for k, v in state.items()})


def observe(anxiety: Anxiety, val_loss: float, config: AnxietyConfig) -> Outcome:
    """Classify a validation loss, move the anxiety level, and update best / last / stagnant."""
    if math.isfinite(val_loss) and val_loss < anxiety.best * (1 - config.tolerance):
        outcome = Outcome.IMPROVED
        anxiety.level = max(0.0, anxiety.level - config.fall)
        anxiety.best, anxiety.stagnant = val_loss, 0
    elif not math.isfinite(val_loss) or val_loss > anxiety.last:
        outcome = Outcome.REGRESSED
        anxiety.level += config.regression_rise
        anxiety.stagnant += 1
    else:
        outcome = Outcome.STAGNANT
        anxiety.level += config.rise
        anxiety.stagnant += 1
    anxiety.last = val_loss
    return outcome


def calm_after_panic(anxiety: Anxiety) -> None:
    """A panic response halves the anxiety level."""
    anxiety.level *= 0.5
