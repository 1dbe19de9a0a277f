"""The four neurochemical modulators and the quantity each one changes.

Each level lives in [0, 1] and follows its signal by an exponential moving average:

- myrcene (calm) rises with rounds where the probe loss improved; it slows pheromone
  evaporation: rate = base x (1 - 0.5 myrcene), so the trails of a working regime last longer.
- limonene (energy) rises with rounds where the probe loss stagnated; it enlarges every knob
  move: the move factor is raised to the power 0.5 + limonene.
- pinene (focus) follows the share of recent proposals that earned positive credit; it narrows
  exploration: rate = min + (max - min) x (1 - pinene).
- linalool (ease) follows steady gradients (1 - coefficient of variation of recent grad norms);
  it raises the panic threshold: base x (1 + linalool).

With the modulators disabled every level stays at 0.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from evolora.economy.config import NeuroConfig


@dataclass
class Neuro:
    """Modulator levels in [0, 1]."""

    myrcene: float = 0.5
    limonene: float = 0.5
    pinene: float = 0.5
    linalool: float = 0.5

    def state(self) -> dict[str, float]:
        """JSON-ready levels."""
        return asdict(self)


def update(neuro: Neuro, signals: dict[str, float], config: NeuroConfig) -> Neuro:
    """Move every level toward its signal in [0, 1] (unchanged when disabled)."""
    if not config.enabled:
        return neuro
    rate = config.rate
    levels = {
        name: (1 - rate) * getattr(neuro, name) + rate * min(1.0, max(0.0, signals[name]))
        for name in ("myrcene", "limonene", "pinene", "linalool")
    }
    return Neuro(**levels)


def evaporation(neuro: Neuro, base: float) -> float:
    """Myrcene slows evaporation."""
    return base * (1.0 - 0.5 * neuro.myrcene)


def step_scale(neuro: Neuro) -> float:
    """Limonene enlarges knob moves (exponent on the move factor)."""
    return 0.5 + neuro.limonene


def exploration(neuro: Neuro, config: NeuroConfig) -> float:
    """Pinene narrows exploration."""
    return config.exploration_min + (config.exploration_max - config.exploration_min) * (
        1.0 - neuro.pinene
    )


def panic_threshold(neuro: Neuro, base: float) -> float:
    """Linalool raises the anxiety needed to panic."""
    return base * (1.0 + neuro.linalool)
