"""Kuramoto phase synchronisation of per-token oscillators (Kuramoto 1975), causal.

Token t carries a phase θ_t and a natural frequency ω_t = w_ω · x_t. Starting from its prime phase
θ⁰_t plus a learned offset w_θ · x_t, K explicit Euler steps of the mean-field Kuramoto model run
over the causal prefix (valid tokens s ≤ t, n_t of them):

    θ^(k+1)_t = θ^k_t + dt · ( ω_t + κ · (1/n_t) Σ_(s≤t) sin(θ^k_s − θ^k_t) )

The sum is O(1) per token from prefix sums: Σ sin(θ_s − θ_t) = S_t cos θ_t − C_t sin θ_t with
S_t = Σ sin θ_s, C_t = Σ cos θ_s. The order parameter r_t = |Σ_(s≤t) e^(iθ_s)| / n_t ∈ [0, 1]
(1 = the prefix is in phase) is logged. The final phases bias attention (attention.py).
While decoding, the cache keeps the running sums (S, C) of every step, so a step costs the same
whatever the length. Cost: O(K·T) per sequence plus two D -> 1 projections per token. κ is learned.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class KuramotoSync(nn.Module):
    """Runs the causal Kuramoto steps; see the module docstring."""

    def __init__(self, dim: int, steps: int, coupling: float, dt: float) -> None:
        super().__init__()
        self.steps, self.dt = steps, dt
        self.frequency = nn.Linear(dim, 1, bias=False)  # a shared shift of ω cancels in θ_i − θ_j
        self.offset = nn.Parameter(torch.zeros(dim))  # θ⁰ + w_θ · x, starting at the prime phase
        self.coupling_init = coupling
        self.coupling = nn.Parameter(torch.tensor(float(coupling)))

    def reset_parameters(self) -> None:
        """w_θ = 0 and κ = the configured coupling."""
        nn.init.zeros_(self.offset)
        nn.init.constant_(self.coupling, self.coupling_init)

    def forward(
        self, x: torch.Tensor, theta0: torch.Tensor, valid: torch.Tensor, past: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Synchronised phases (B, T), order parameter (B, T) and the running sums (B, 2K) to keep
        for later tokens. x (B, T, D); theta0 (B, T); valid (B, S) with the S - T past tokens
        first; past (B, 2K) or None: the running sums [Σ sin θ^k_s ; Σ cos θ^k_s] of the valid
        past tokens at steps k = 0..K-1 (what this call returns)."""
        theta = theta0 + x @ self.offset.to(x.dtype)  # (B, T)
        omega = self.frequency(x).squeeze(-1)  # (B, T)
        new_valid = valid[:, valid.shape[1] - theta.shape[1] :].to(theta.dtype)  # (B, T)
        past_valid = valid[:, : valid.shape[1] - theta.shape[1]].to(theta.dtype)
        count = new_valid.cumsum(1) + past_valid.sum(1, keepdim=True)  # n_t (B, T)
        count = count.clamp(min=1.0)
        sums = []
        s_sum = c_sum = None
        for k in range(self.steps):
            s_sum = (torch.sin(theta) * new_valid).cumsum(1)
            c_sum = (torch.cos(theta) * new_valid).cumsum(1)
            if past is not None:
                s_sum = s_sum + past[:, k, None].to(theta.dtype)
                c_sum = c_sum + past[:, self.steps + k, None].to(theta.dtype)
            sums.append((s_sum[:, -1], c_sum[:, -1]))
            pull = (s_sum * torch.cos(theta) - c_sum * torch.sin(theta)) / count
            theta = theta + self.dt * (omega + self.coupling * pull)
        theta = torch.remainder(theta, 2 * math.pi)
        order = torch.sqrt(s_sum**2 + c_sum**2) / count  # of the last step's input phases
        running = torch.stack([s for s, _ in sums] + [c for _, c in sums], dim=-1)
        return theta, order, running
