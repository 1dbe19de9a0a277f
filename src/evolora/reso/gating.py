"""Coherence gating: Adaptive Computation Time over depth (Graves 2016, arXiv:1603.08983).

After block l a halting unit gives p^l_t = σ(w_h · x^l_t + b). A token halts at the first layer
where its cumulative halting mass reaches `halt_threshold` (1 − ε); it then takes the remainder
R_t = 1 − Σ_(l<N) p^l_t and stops changing. Its output is the ACT mixture

    y_t = Σ_(l<N_t) p^l_t x^l_t + R_t x^(N_t)_t,     ponder cost ρ_t = N_t + R_t,

and the loss adds `ponder_cost` · mean ρ. The last block gives every remaining token its
remainder. A halted token still serves as a key/value (from its frozen state) to later tokens,
but skips the FFN of every remaining block: the FFN runs on the packed active tokens only
(`pack` / `unpack`), so the saved compute is real, and `skipped` counts it.
The same rule runs in training and inference (no soft/hard mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class HaltState:
    """The ACT bookkeeping of one forward (all (B, T))."""

    active: torch.Tensor
    cumulative: torch.Tensor
    output: torch.Tensor  # (B, T, D) the running mixture y
    ponder: torch.Tensor
    skipped_ffn: int = 0
    total_ffn: int = 0
    layers_used: list[torch.Tensor] = field(default_factory=list)


class HaltingUnit(nn.Module):
    """p = σ(w · x + b) per token."""

    def __init__(self, dim: int, bias_init: float) -> None:
        super().__init__()
        self.bias_init = bias_init
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))

    def reset_parameters(self) -> None:
        """w = 0, b = bias_init: every token starts with the same halting probability."""
        nn.init.zeros_(self.weight)
        nn.init.constant_(self.bias, self.bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halting probabilities (B, T) of x (B, T, D)."""
        return torch.sigmoid(x @ self.weight.to(x.dtype) + self.bias)


def start(x: torch.Tensor, valid: torch.Tensor) -> HaltState:
    """Fresh ACT state for the new tokens x (B, T, D); padding starts halted."""
    zeros = torch.zeros(x.shape[:2], device=x.device, dtype=x.dtype)
    return HaltState(active=valid.bool().clone(), cumulative=zeros, output=torch.zeros_like(x),
                     ponder=zeros.clone())


def step(state: HaltState, x: torch.Tensor, p: torch.Tensor | None, threshold: float) -> None:
    """Account block output x (B, T, D) with halting probabilities p (None: the last block)."""
    active = state.active
    act = active.to(x.dtype)
    halting = active if p is None else active & (state.cumulative + p >= threshold)
    remainder = (1 - state.cumulative)
    weight = torch.where(halting, remainder, p * act if p is not None else torch.zeros_like(act))
    state.output = torch.addcmul(state.output, weight[..., None], x)
    state.ponder = state.ponder + act + torch.where(halting, remainder, torch.zeros_like(act))
    state.cumulative = state.cumulative + weight
    state.active = active & ~halting


def pack(x: torch.Tensor, active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's active tokens moved to the front: (B, T_max, D) and their positions (B, T_max)."""
    order = torch.argsort((~active).to(torch.int8), dim=1, stable=True)
    width = int(active.sum(1).max())
    index = order[:, :width]
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1])), index


def unpack(base: torch.Tensor, packed: torch.Tensor, index: torch.Tensor,
           active: torch.Tensor) -> torch.Tensor:
    """base (B, T, D) with the packed rows' active tokens added back at their positions."""
    keep = active.gather(1, index)[..., None].to(packed.dtype)  # drop padding slots
    out = base.clone()
    out.scatter_add_(1, index[..., None].expand(-1, -1, base.shape[-1]), packed * keep)
    return out
