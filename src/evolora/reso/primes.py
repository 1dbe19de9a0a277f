"""The prime map (token id t -> the (t+1)-th prime p_t) and the prime token embedding.

Prime embedding. For frequency k = 0..D/2-1 with ω_k = 2π φ^(-k·8/D) (golden-ratio spaced, from
2π down to 2π φ^-4), the phase of token t is ψ_(t,k) = p_t ω_k mod 2π, and

    e_t = E[t] + [a_k cos ψ_(t,k) ; a_k sin ψ_(t,k)]_k     (learned table E, learned amplitudes a)

so two tokens share phase structure exactly as their primes share residues. The token's oscillator
phase for the Kuramoto layer is θ⁰_t = 2π frac(p_t φ). Cost: D multiply-adds per token on top of
the table lookup; D/2 extra parameters.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

PHI = (1 + math.sqrt(5)) / 2


@lru_cache(maxsize=4)
def first_primes(n: int) -> np.ndarray:
    """The first n primes (int64), by a sieve of Eratosthenes."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    limit = max(16, int(n * (math.log(n + 1) + math.log(math.log(n + 3)) + 3)))
    while True:
        sieve = np.ones(limit + 1, dtype=bool)
        sieve[:2] = False
        for p in range(2, math.isqrt(limit) + 1):
            if sieve[p]:
                sieve[p * p :: p] = False
        primes = np.flatnonzero(sieve)
        if len(primes) >= n:
            return primes[:n].astype(np.int64)
        limit *= 2


def token_prime(token_id: int) -> int:
    """The prime of a token id (id 0 -> 2, id 1 -> 3, ...)."""
    return int(first_primes(token_id + 1)[token_id])


@lru_cache(maxsize=8)
def phase_tables(vocab_size: int, dim: int, device: str) -> tuple[torch.Tensor, ...]:
    """The phase code [cos ψ ; sin ψ] (V, D) and the oscillator phases θ⁰ (V,) of every token,
    on `device`."""
    primes = torch.as_tensor(first_primes(vocab_size), dtype=torch.float64)
    freqs = 2 * math.pi * PHI ** (-torch.arange(dim // 2, dtype=torch.float64) * 8.0 / dim)
    # In float64: p_t * ω_k reaches ~1e5 and float32 would lose the phase.
    phase = torch.remainder(primes[:, None] * freqs[None, :], 2 * math.pi)
    theta = 2 * math.pi * torch.remainder(primes * PHI, 1.0)
    code = torch.cat([phase.cos(), phase.sin()], dim=-1)
    return code.float().to(device), theta.float().to(device)


class PrimeEmbedding(nn.Module):
    """Token embedding plus (when enabled) the prime phase code with learned amplitudes."""

    def __init__(self, vocab_size: int, dim: int, enabled: bool, amplitude_init: float) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, dim)
        self.enabled, self.vocab_size, self.dim = enabled, vocab_size, dim
        self.amplitude = (nn.Parameter(torch.full((dim // 2,), float(amplitude_init)))
                          if enabled else None)

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        return phase_tables(self.vocab_size, self.dim, str(device))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, T, D) of token ids (B, T)."""
        x = self.embed_tokens(input_ids)
        if not self.enabled:
            return x
        code = self._tables(input_ids.device)[0][input_ids]  # (B, T, D)
        return torch.addcmul(x, code.to(x.dtype), self.amplitude.repeat(2).to(x.dtype))

    def phases(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The prime oscillator phase θ⁰ of each token, (B, T)."""
        return self._tables(input_ids.device)[1][input_ids]
