"""The steered hyperparameters (`Knobs`), their bounds, and how a knob value is applied.

lr and weight decay go into the optimizer's LoRA param groups, dropout into every LoRA dropout
module, rank into the adapters (SVD re-factoring); grad clip, accumulation and the data mix are
read by the training loop at its next step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from evolora.economy.config import EconomyConfig, Role


@dataclass
class Knobs:
    """Current values of every steered hyperparameter."""

    lr: float
    weight_decay: float
    dropout: float
    grad_clip: float
    accumulation: int
    rank: int
    mix: list[float] = field(default_factory=list)
    lr_gain: float = 0.0

    @classmethod
    def initial(cls, config: EconomyConfig, groups: int) -> Knobs:
        """The starting knobs of a run with `groups` data-mix groups (uniform mix)."""
        k = config.knobs
        return cls(
            k.lr,
            k.weight_decay,
            k.dropout,
            k.grad_clip,
            k.accumulation,
            config.workload.rank,
            [1.0 / groups] * groups,
            k.lr_gain,
        )

    def state(self) -> dict:
        """JSON-ready values."""
        return asdict(self)


def knob_of(role: Role) -> str:
    """The `Knobs` field a role's agent steers (the lr agent steers the hypergradient gain that
    moves the lr every step; panic and the NaN guard set the lr itself)."""
    if role is Role.DATA_MIX:
        return "mix"
    return "lr_gain" if role is Role.LR else role.value


def clip_value(knob: str, value, config: EconomyConfig):
    """`value` clipped into the knob's allowed range (rank into 1..max_rank, the mix's shares into
    mix_bounds then renormalised); returns (clipped value, whether clipping changed it)."""
    k = config.knobs
    if knob == "rank":
        out = int(min(max(value, 1), config.workload.max_rank))
        return out, out != value
    if knob == "mix":
        low, high = k.mix_bounds.low, k.mix_bounds.high
        total = sum(value)
        shares = [min(max(v / total, low), high) for v in value]
        out = [s / sum(shares) for s in shares]
        return out, any(abs(a - b / total) > 1e-9 for a, b in zip(out, value, strict=True))
    bounds = getattr(k, f"{knob}_bounds")
    out = min(max(value, bounds.low), bounds.high)
    if knob == "accumulation":
        out = round(out)
    return out, out != value
