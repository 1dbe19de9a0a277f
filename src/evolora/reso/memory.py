"""Temporal sedenion memory field (SMF): holographic key–value binding with decay and episodes.

Each token writes C sedenions (16 named axes, sedenion.py) per channel: key k_t = W_k x_t and value
v_t = W_v x_t are bound by the sedenion product, b_t = k_t ⊗ v_t (Plate-style holographic binding
with a hypercomplex product). The field seen by token t is the decayed, episode-weighted sum of
earlier bindings plus the persistent moments written by `update_memory`:

    M_t = Σ_(s<t) λ^(t−s) e(s, t) b_s + Σ_m w_m λ^(age_m) b_m,     λ = 1 − memory_decay_rate,

e(s, t) = 1 within the same episode, `episode_carry` across episodes (episodic tagging; an episode
starts at each boundary token, e.g. <bos> or a newline). Token t reads with its key's conjugate,
r_t = k*_t ⊗ M_t (for an alternative algebra k*(k v) = |k|² v exactly; sedenions are not
alternative, so recall is approximate), and the block adds W_o r_t to the residual stream.
Cost: O(T·S·16C) for the weighted sum and 2·256·C multiply-adds per token for the products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evolora.reso import sedenion


@dataclass
class Moment:
    """One stored memory: its text, importance, time step of writing and episode tag."""

    text: str
    importance: float
    step: int
    episode: int


class SedenionMemory(nn.Module):
    """The memory field; see the module docstring."""

    def __init__(self, dim: int, channels: int, decay_rate: float, episodic: bool, carry: float,
                 max_moments: int) -> None:
        super().__init__()
        self.channels = channels
        self.decay = 1.0 - decay_rate
        self.episodic, self.carry = episodic, carry
        self.key = nn.Linear(dim, 16 * channels, bias=False)
        self.value = nn.Linear(dim, 16 * channels, bias=False)
        self.out = nn.Linear(16 * channels, dim, bias=False)
        nn.init.normal_(self.out.weight, std=0.02 / math.sqrt(channels))
        self.max_moments = max_moments
        self.register_buffer("moments", torch.zeros(max_moments, channels, 16))
        self.register_buffer("weights", torch.zeros(max_moments))
        self.register_buffer("written", torch.zeros(max_moments))  # time step of each moment
        self.register_buffer("clock", torch.zeros((), dtype=torch.long))
        self.shared: torch.Tensor | None = None  # (C, 16) field of entangled partners
        self.log: list[Moment] = []

    def bindings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and bindings k ⊗ v, both (B, T, C, 16), of hidden states x (B, T, D)."""
        b, t, _ = x.shape
        # One GEMM for both projections.
        kv = F.linear(x, torch.cat([self.key.weight, self.value.weight]))
        k, v = kv.view(b, t, 2, self.channels, 16).unbind(2)
        return k, sedenion.multiply(k, v)

    def persistent_field(self) -> torch.Tensor:
        """Σ_m w_m λ^(age_m) b_m plus any field shared by entangled partners, (C, 16)."""
        age = (self.clock - self.written).clamp(min=0).float()
        w = self.weights * self.decay**age
        field = torch.einsum("m,mcs->cs", w, self.moments)
        return field if self.shared is None else field + self.shared.to(field)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, episodes: torch.Tensor,
                valid: torch.Tensor, past: torch.Tensor | None,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x + W_o r (B, T, D), bindings to append to history (B, T, 16C + 2)).
        positions, episodes and valid are (B, S) over past then new tokens; past (B, S−T, 16C+2)."""
        b, t, _ = x.shape
        k, bound = self.bindings(x)
        flat = bound.reshape(b, t, -1)
        new = torch.cat([flat, positions[:, -t:, None].to(x.dtype),
                         episodes[:, -t:, None].to(x.dtype)], dim=-1)
        if past is None or past.shape[1] == 0:
            hist, values = new, flat
        else:
            hist = torch.cat([past.to(x.dtype), new], 1)
            values = hist[..., :-2]
        pos_s, ep_s = hist[..., -2], hist[..., -1]  # (B, S)
        pos_t, ep_t = pos_s[:, -t:], ep_s[:, -t:]  # (B, T)
        gap = pos_t[:, :, None] - pos_s[:, None, :]  # (B, T, S)
        before = (gap > 0) & valid.bool()[:, None, :]
        log_decay = math.log(self.decay) if self.decay > 0 else -1e4
        weight = torch.exp(gap.clamp(min=0) * log_decay) * before
        if self.episodic:
            same = ep_t[:, :, None] == ep_s[:, None, :]
            weight = weight * (self.carry + (1.0 - self.carry) * same.to(weight.dtype))
        field = weight @ values  # (B, T, 16C)
        field = field.view(b, t, self.channels, 16) + self.persistent_field().to(x.dtype)
        read = sedenion.multiply(sedenion.conjugate(k), field)  # (B, T, C, 16)
        return x + self.out(read.reshape(b, t, -1)), new

    @torch.no_grad()
    def write(self, bound: torch.Tensor, text: str, importance: float, episode: int) -> None:
        """Store the mean binding (C, 16) of a text as a moment; the oldest goes when full."""
        self.clock += 1
        n = len(self.log)
        slot = n if n < self.max_moments else int(torch.argmin(self.written))
        if n >= self.max_moments:
            self.log.pop(0)
        self.moments[slot] = bound.to(self.moments)
        self.weights[slot] = importance
        self.written[slot] = float(self.clock)
        self.log.append(Moment(text, importance, int(self.clock), episode))
