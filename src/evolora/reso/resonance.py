"""The SwiGLU feed-forward network with stochastic resonance (Benzi et al. 1981; Gammaitoni 1998).

Repetition detector: token t is repetitive, ρ_t = 1, when its bigram (x_(t−1), x_t) already occurred
within the last `window` positions (ρ_t = 0 otherwise, and at padding). The FFN is

    FFN(x) = W_down( SiLU(W_gate x + a ρ_t std(W_gate x) ε) ⊙ W_up x ),   ε ~ N(0, I)

with a = `noise_amplitude`: noise is added at the nonlinearity's threshold only where the text
repeats itself, in training (a regulariser on loops) and in inference (a push out of loops).
Noise comes from the generator the caller passes, else torch's global one (seeded by the run).
Cost of the detector: `window` comparisons per token; of the noise: one Gaussian per pre-activation
of a repetitive token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def repeated_bigrams(tokens: torch.Tensor, valid: torch.Tensor, window: int) -> torch.Tensor:
    """ρ (B, T) float for the last T tokens of `tokens` (B, S) (earlier ones are context)."""
    s = tokens.shape[1]
    lags = min(window, s - 1)
    if lags < 1:
        return torch.zeros_like(tokens, dtype=torch.float)
    ids = torch.where(valid.bool(), tokens, torch.full_like(tokens, -1))
    prev = F.pad(ids, (1, 0), value=-1)[:, :-1]  # x_(t-1), -1 before the start
    ok = (ids >= 0) & (prev >= 0)
    # One int64 code per bigram; a position without a valid bigram gets its own negative code,
    # so it matches nothing.
    positions = torch.arange(s + lags, device=ids.device)
    code = torch.where(ok, prev * 2**31 + ids, -1 - positions[lags:])
    earlier = torch.cat([(-1 - positions[:lags]).expand(code.shape[0], lags), code], dim=1)
    windows = earlier.unfold(1, lags, 1)[:, :s]  # (B, S, lags): the codes at t-lags .. t-1
    return ((windows == code[..., None]).any(-1) & ok).float()


def row_std(x: torch.Tensor) -> torch.Tensor:
    """The unbiased standard deviation (N, 1) of each row of x (N, H), as torch.std (two passes,
    an order of magnitude faster than torch.std's on CPU)."""
    centred = x - x.mean(dim=-1, keepdim=True)
    return (centred.square().sum(dim=-1, keepdim=True) / max(1, x.shape[-1] - 1)).sqrt()


class ResonantFFN(nn.Module):
    """SwiGLU FFN with repetition-gated noise; see the module docstring."""

    def __init__(self, dim: int, hidden: int, enabled: bool, amplitude: float) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)
        self.enabled, self.amplitude = enabled, amplitude

    def forward(self, x: torch.Tensor, repetition: torch.Tensor | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """FFN(x) for x (B, T, D); repetition ρ (B, T) or None (no noise)."""
        u = self.gate_proj(x)  # (B, T, H)
        noisy = self.enabled and repetition is not None and self.amplitude > 0
        if noisy and bool(repetition.any()):
            # Noise is drawn for the repetitive tokens only (ρ is 0 or 1), not for every token.
            rows = (repetition.flatten() > 0).nonzero().squeeze(1)
            flat = u.flatten(0, -2)
            picked = flat.detach().index_select(0, rows)  # (N_rep, H)
            eps = torch.randn(picked.shape, generator=generator, device=u.device, dtype=u.dtype)
            noise = self.amplitude * row_std(picked) * eps
            # The noise is a constant: adding it leaves u's gradient the identity.
            u = flat.index_add(0, rows, noise).view_as(u)
        return self.down_proj(F.silu(u) * self.up_proj(x))
