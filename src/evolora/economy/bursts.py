"""Quantum bursts: a structured perturbation of every adapter along its top singular directions.

For each layer, ΔW = U diag(S) Vh (SVD, truncated to the active rank); the top `top_k` singular
values are each multiplied by (1 + scale x z), z ~ N(0, 1) (clamped at 0), and the factors are
re-written so that the layer's update becomes U diag(S') Vh. The caller keeps the burst only if
validation loss improves within its window, otherwise it restores the snapshot it took before.
"""

from __future__ import annotations

import torch

from evolora.economy.adapters import delta, lora_slots, write_factors


@torch.no_grad()
def burst(model, rank: int, top_k: int, scale: float, generator: torch.Generator) -> float:
    """Perturb every adapter's top singular values in place; return the mean |relative change|."""
    changes = []
    for slot in lora_slots(model):
        U, S, Vh = torch.linalg.svd(delta(slot), full_matrices=False)
        U, S, Vh = U[:, :rank], S[:rank].clone(), Vh[:rank]
        k = min(top_k, int((S > 1e-12).sum()))
        if k == 0:
            continue
        z = torch.randn(k, generator=generator).to(S.device, S.dtype)
        factor = (1.0 + scale * z).clamp(min=0.0)
        S[:k] = S[:k] * factor
        write_factors(slot, U, S, Vh)
        changes.append(float((factor - 1).abs().mean()))
    return sum(changes) / len(changes) if changes else 0.0
