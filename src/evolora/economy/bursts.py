"""Quantum bursts: a structured perturbation of every adapter along its top singular directions.

For each layer, ΔW = s·B·A = U diag(S) Vh (SVD); the top `top_k` singular values (within the
active rank) are each multiplied by f = 1 + scale x z, z ~ N(0, 1) (clamped at `FLOOR`). The
change is made on the output side only: ΔW' = (I + U_k diag(f - 1) U_kᵀ) ΔW, i.e.
B' = B + U_k diag(f - 1) U_kᵀ B with A untouched. This is exactly the rescaled decomposition
U diag(S') Vh, but it keeps the factors' parametrisation: re-writing them as balanced SVD factors
would shrink A to the size of ΔW, change how fast LoRA learns afterwards and leave the optimizer's
moments describing other factors.

The caller keeps the burst only if validation loss improves within its window; otherwise `undo`
applies the inverse map, ΔW <- (I + U_k diag(1/f - 1) U_kᵀ) ΔW: the perturbation is removed while
what the adapters learned since the burst stays (restoring the pre-burst weights would also throw
away the window's training).
"""

from __future__ import annotations

import torch

from evolora.economy.adapters import delta, lora_slots

FLOOR = 0.05  # lowest singular-value multiplier: keeps every burst invertible


@torch.no_grad()
def burst(
    model, rank: int, top_k: int, scale: float, generator: torch.Generator
) -> tuple[float, dict[str, torch.Tensor]]:
    """Perturb every adapter's top singular values in place; return the mean |relative change|
    and the directions and multipliers `undo` needs (`{layer}.U`, `{layer}.f`)."""
    changes, directions = [], {}
    for slot in lora_slots(model):
        U, S, _ = torch.linalg.svd(delta(slot), full_matrices=False)
        k = min(top_k, rank, int((S > 1e-12).sum()))
        if k == 0:
            continue
        z = torch.randn(k, generator=generator).to(S.device, S.dtype)
        factor = (1.0 + scale * z).clamp(min=FLOOR)
        Uk = U[:, :k].to(slot.B.dtype)
        _scale_along(slot, Uk, factor.to(slot.B.dtype))
        directions[f"{slot.name}.U"], directions[f"{slot.name}.f"] = Uk.clone(), factor.clone()
        changes.append(float((factor - 1).abs().mean()))
    return (sum(changes) / len(changes) if changes else 0.0), directions


@torch.no_grad()
def undo(model, directions: dict[str, torch.Tensor]) -> None:
    """Remove a burst: multiply each perturbed direction back by 1 / f."""
    for slot in lora_slots(model):
        if f"{slot.name}.U" in directions:
            factor = directions[f"{slot.name}.f"]
            _scale_along(slot, directions[f"{slot.name}.U"], 1.0 / factor)


def _scale_along(slot, Uk: torch.Tensor, factor: torch.Tensor) -> None:
    """B <- B + U_k diag(factor - 1) U_kᵀ B: ΔW's components along U_k multiplied by factor."""
    slot.B += Uk @ ((factor - 1.0)[:, None] * (Uk.T @ slot.B))
