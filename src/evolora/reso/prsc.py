"""PRSC: Prime Resonance Semantic Coherence — compositional states by prime interference.

Each token gets a complex state over K prime basis states |p_1>..|p_K>:

    z_t = a_t ⊙ exp(i ψ_t),   a_t = softplus(W_a x_t),   ψ_t = W_ψ x_t + θ⁰_t · log p        (C^K)

Its context is the mean state of the valid tokens before it, c_t = (1/n) Σ_(s<t) z_s. Coherence of
two states is C(u, v) = |<u, v>| / (|u| |v|) ∈ [0, 1]; a gate g(C) = σ(sharpness (C − threshold))
lets a state interfere only when coherent. Composition is interference (superposition of complex
amplitudes):

    u_t = z_t + g(C(z_t, c_t)) c_t + Σ_m g(C(z_t, b_m)) b_m                  (bound concepts b_m)

and the layer adds W_o [Re u_t, Im u_t, |u_t|² − |z_t|²] to the residual stream; the last block is
the interference term 2 Re(z_t conj(rest)) + |rest|² per prime. While decoding, the cache keeps
the running sum Σ z_s (not every state), so a step costs the same whatever the length.
`bind_concept` stores a token's state as a named concept b_m (up to `max_bindings`); `compose`
and `coherence` expose the algebra.
Cost: O(K·(D + M)) per token for M bindings.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from evolora.errors import EvoloraError
from evolora.reso.primes import first_primes


@lru_cache(maxsize=8)
def log_primes(k: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """log p of the first k primes, (k,)."""
    return torch.log(torch.as_tensor(first_primes(k), dtype=torch.float64)).to(device, dtype)


def coherence(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """|<u, v>| / (|u||v|) of complex states stored as (..., 2K) = [Re ; Im]."""
    k = u.shape[-1] // 2
    ur, ui, vr, vi = u[..., :k], u[..., k:], v[..., :k], v[..., k:]
    # <u, v> = Σ u conj(v) = Σ (ur vr + ui vi) + i Σ (ui vr − ur vi)
    real = (ur * vr + ui * vi).sum(-1)
    imag = (ui * vr - ur * vi).sum(-1)
    norm = u.norm(dim=-1) * v.norm(dim=-1)
    return torch.sqrt(real**2 + imag**2 + 1e-12) / (norm + 1e-6)


def compose(*states: torch.Tensor) -> torch.Tensor:
    """The interference (superposition) of complex states (..., 2K)."""
    return torch.stack(states).sum(0)


class PRSCLayer(nn.Module):
    """The PRSC semantic layer; see the module docstring."""

    def __init__(self, dim: int, num_primes: int, threshold: float, sharpness: float,
                 max_bindings: int) -> None:
        super().__init__()
        self.k, self.threshold, self.sharpness = num_primes, threshold, sharpness
        self.amplitude = nn.Linear(dim, num_primes)
        self.phase = nn.Linear(dim, num_primes)
        self.out = nn.Linear(3 * num_primes, dim, bias=False)
        nn.init.normal_(self.out.weight, std=0.02 / math.sqrt(3))
        self.register_buffer("bindings", torch.zeros(max_bindings, 2 * num_primes))
        self.register_buffer("n_bindings", torch.zeros((), dtype=torch.long))

    def state(self, x: torch.Tensor, theta0: torch.Tensor) -> torch.Tensor:
        """Complex prime states (..., 2K) of hidden states x (..., D) with prime phases θ⁰ (...)."""
        # One GEMM for both projections.
        both = F.linear(x, torch.cat([self.amplitude.weight, self.phase.weight]),
                        torch.cat([self.amplitude.bias, self.phase.bias]))
        amp, psi = F.softplus(both[..., : self.k]), both[..., self.k :]
        psi = torch.addcmul(psi, theta0[..., None], log_primes(self.k, str(x.device), x.dtype))
        return torch.cat([amp * torch.cos(psi), amp * torch.sin(psi)], dim=-1)

    def gate(self, c: torch.Tensor) -> torch.Tensor:
        """g(C) = σ(sharpness (C − threshold))."""
        return torch.sigmoid(self.sharpness * (c - self.threshold))

    def forward(
        self, x: torch.Tensor, theta0: torch.Tensor, valid: torch.Tensor, past: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x + PRSC features (B, T, D), context coherence (B, T), running sum (B, 2K) of the
        valid states so far). valid (B, S) covers the past tokens then these; past (B, 2K) or None:
        the running sum of the valid past tokens' states (what this call returns), so a decoding
        step costs the same whatever the length."""
        z = self.state(x, theta0)  # (B, T, 2K)
        t = z.shape[1]
        new_valid = valid[:, valid.shape[1] - t :, None].to(z.dtype)  # (B, T, 1)
        masked = z * new_valid
        running = masked.cumsum(1)
        total = running - masked  # states strictly before t
        count = new_valid.cumsum(1) - new_valid
        if past is not None:
            past_valid = valid[:, : valid.shape[1] - t, None].to(z.dtype)
            running = running + past[:, None].to(z.dtype)
            total = total + past[:, None].to(z.dtype)
            count = count + past_valid.sum(1, keepdim=True)
        context = total / count.clamp(min=1.0)
        c_ctx = coherence(z, context)  # (B, T)
        rest = self.gate(c_ctx)[..., None] * context
        n = int(self.n_bindings)
        if n:
            bound = self.bindings[:n].to(z.dtype)  # (M, 2K)
            c_bind = coherence(z[..., None, :], bound)  # (B, T, M)
            rest = rest + self.gate(c_bind) @ bound
        u = z + rest
        energy_u = (u[..., : self.k] ** 2 + u[..., self.k :] ** 2)
        energy_z = (z[..., : self.k] ** 2 + z[..., self.k :] ** 2)
        features = torch.cat([u, energy_u - energy_z], dim=-1)  # (B, T, 3K)
        return x + self.out(features), c_ctx, running[:, -1]

    @torch.no_grad()
    def bind(self, state: torch.Tensor) -> int:
        """Store a concept state (2K,) in the next binding slot and return its index."""
        n = int(self.n_bindings)
        if n >= self.bindings.shape[0]:
            raise EvoloraError(
                f"The PRSC binding table is full ({n} concepts); raise prsc.max_bindings."
            )
        self.bindings[n] = state.to(self.bindings.dtype)
        self.n_bindings += 1
        return n
