"""Resonant attention: causal multi-head attention with RoPE plus two stated score terms.

Scores of head h, query i, key j (hs = head size, RoPE of Su et al. 2021 on q and k):

    s_ij = q_i·k_j / √hs  +  β_h cos(θ_i − θ_j)  +  γ_h σ_j

- resonance term (resonant_attention): θ are the Kuramoto phases; β_h = β φ^(-h) g_h, golden-ratio
  spaced over heads (head 0 listens most to phase, later heads less), g_h learned (init 1);
- agency term (agency): σ_j is key j's goal salience (agency.py), γ_h learned (init 1).

Both are rank-1/2 terms, so they ride inside one fused SDPA call as extra query/key dimensions:
q' = [q, √hs β_h cos θ_i, √hs β_h sin θ_i, √hs γ_h, 0…], k' = [k, cos θ_j, sin θ_j, σ_j, 0…],
scale 1/√hs, zero-padded so the head width is a multiple of 8 (the fused kernel's vector width:
64 + 3 runs slower than 64 + 8). The per-token features [cos θ, sin θ, 1 | σ] are built once per
forward (`score_features`) and shared by every layer; a layer only scales the query's by its gains.
The KV cache stores k' (and v zero-padded to the same width, so the fused kernel runs) and cached
decoding sees the same scores. Cost: up to 8 extra dims per head.
With both terms disabled this is exactly the plain (Llama) attention.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from evolora.reso.primes import PHI

ALIGN = 8  # head widths padded to a multiple of this


@lru_cache(maxsize=16)
def golden_ratios(n_head: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """φ^-h for heads h = 0..n_head-1."""
    return (PHI ** -torch.arange(n_head, dtype=torch.float64)).to(device=device, dtype=dtype)


def score_features(phase: torch.Tensor | None, salience: torch.Tensor | None,
                   head_size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The extra query and key features (B, 1, T, E) of the phase (B, T) and salience (B, T)
    terms, zero-padded so that head_size + E is a multiple of ALIGN; None when both are None."""
    queries, keys = [], []
    if phase is not None:
        cos, sin = torch.cos(phase), torch.sin(phase)
        queries += [cos, sin]
        keys += [cos, sin]
    if salience is not None:
        queries.append(torch.ones_like(salience))
        keys.append(salience)
    if not keys:
        return None
    pad = -(head_size + len(keys)) % ALIGN
    q, k = torch.stack(queries, -1), torch.stack(keys, -1)
    return F.pad(q, (0, pad))[:, None], F.pad(k, (0, pad))[:, None]


def rope_tables(positions: torch.Tensor, head_size: int, base: float) -> tuple[torch.Tensor, ...]:
    """cos and sin tables (B, 1, T, hs) for integer positions (B, T)."""
    inv = 1.0 / base ** (torch.arange(0, head_size, 2, device=positions.device).float() / head_size)
    angles = positions.float()[..., None] * inv  # (B, T, hs/2)
    angles = torch.cat([angles, angles], dim=-1)[:, None]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, nh, T, hs) by the RoPE tables (rotate-half convention, as Llama)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class ResonantAttention(nn.Module):
    """Multi-head causal attention with the resonance and agency terms; see the module docstring."""

    def __init__(self, dim: int, n_head: int, layer_idx: int, phase_scale: float,
                 resonance: bool, agency: bool) -> None:
        super().__init__()
        self.n_head, self.head_size, self.layer_idx = n_head, dim // n_head, layer_idx
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        self.resonance, self.agency = resonance, agency
        self.phase_scale = phase_scale
        self.phase_gain = nn.Parameter(torch.ones(n_head)) if resonance else None
        self.goal_gain = nn.Parameter(torch.ones(n_head)) if agency else None

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        """Attention output (B, T, D) for x (B, T, D) in the forward context `ctx` (model.py)."""
        b, t, d = x.shape
        nh, hs = self.n_head, self.head_size
        q = self.q_proj(x).view(b, t, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(b, t, nh, hs).transpose(1, 2)
        v = self.v_proj(x).view(b, t, nh, hs).transpose(1, 2)
        q, k = apply_rope(q, *ctx.rope), apply_rope(k, *ctx.rope)
        root = math.sqrt(hs)
        features = ctx.features(self.resonance, self.agency, hs)
        if features is not None:
            q_feat, k_feat = features
            width = q_feat.shape[-1]
            gains = []
            if self.resonance:
                golden = golden_ratios(nh, str(x.device), x.dtype)
                beta = self.phase_scale * golden * self.phase_gain
                gains += [beta, beta]
            if self.agency:
                gains.append(self.goal_gain)
            gains = F.pad(torch.stack(gains, -1), (0, width - len(gains))) * root  # (nh, E)
            q = torch.cat([q, (q_feat * gains[:, None, :]).to(q.dtype)], dim=-1)
            k = torch.cat([k, k_feat.expand(b, nh, t, width).to(k.dtype)], dim=-1)
            # v padded with zeros to q's width: the fused (flash) kernel needs equal head sizes,
            # else SDPA falls back to its unfused path; the zero columns leave y unchanged.
            v = F.pad(v, (0, width))
        if ctx.cache is not None:
            k, v = ctx.cache.update(k, v, self.layer_idx)  # (B, nh, S, hs')
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=ctx.attn_mask, is_causal=ctx.attn_mask is None and t > 1,
            scale=1.0 / root,
        )[..., :hs]  # (B, nh, T, hs)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, d))
