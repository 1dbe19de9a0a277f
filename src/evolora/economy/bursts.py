"""Quantum bursts: a structured perturbation of every adapter along its top singular directions.

For each layer, ΔW = s·B·A = U diag(S) Vh (SVD); the top `top_k` singular values (within the
active rank) are each multiplied by (1 + scale x z), z ~ N(0, 1) (clamped at 0). The change is
made on the output side only: ΔW' = (I + U_k diag(f - 1) U_kᵀ) ΔW, i.e. B' = B + U_k diag(f - 1)
U_kᵀ B with A untouched. This is exactly the rescaled decomposition U diag(S') Vh, but it keeps
the factors' parametrisation: re-writing them as balanced SVD factors would shrink A to the size
of ΔW, change how fast LoRA learns afterwards and leave the optimizer's moments describing other
factors. The caller keeps the burst only if validation loss improves within its window,
otherwise it restores the snapshot it took before.
"""

from __future__ import annotations

import torch

from evolora.economy.adapters import delta, lora_slots


@torch.no_grad()
def burst(model, rank: int, top_k: int, scale: float, generator: torch.Generator) -> float:
    """Perturb every adapter's top singular values in place; return the mean |relative change|."""
    changes = []
    for slot in lora_slots(model):
        U, S, _ = torch.linalg.svd(delta(slot), full_matrices=False)
        k = min(top_k, rank, int((S > 1e-12).sum()))
        if k == 0:
            continue
        z = torch.randn(k, generator=generator).to(S.device, S.dtype)
        factor = (1.0 + scale * z).clamp(min=0.0)
        Uk = U[:, :k].to(slot.B.dtype)
        slot.B += Uk @ (((factor - 1.0).to(slot.B.dtype))[:, None] * (Uk.T @ slot.B))
        changes.append(float((factor - 1).abs().mean()))
    return sum(changes) / len(changes) if changes else 0.0
