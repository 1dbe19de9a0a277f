"""Quantum bursts: a structured perturbation of every adapter along its top singular directions,
and its judgement against the same training without it.

For each layer, ΔW = s·B·A = U diag(S) Vh (SVD); the top `top_k` singular values (within the
active rank) are each multiplied by f = (1 + scale x z), z ~ N(0, 1), clamped at `MIN_FACTOR` so
the burst stays invertible. The change is made on the output side only: ΔW' = M ΔW with
M = I + U_k diag(f - 1) U_kᵀ, i.e. B' = B + U_k diag(f - 1) U_kᵀ B with A untouched. This is
exactly the rescaled decomposition U diag(S') Vh, but it keeps the factors' parametrisation:
re-writing them as balanced SVD factors would shrink A to the size of ΔW, change how fast LoRA
learns afterwards and leave the optimizer's moments describing other factors.

Because M is a left factor of ΔW whatever the factors hold, M⁻¹ = I + U_k diag(1/f - 1) U_kᵀ
(`undo`) removes the burst from weights trained after it: M⁻¹(M B + ΔB) = B + M⁻¹ ΔB keeps what
the window learned. `verdict` compares three validated candidates at the end of the window: the
burst as trained, the same weights with the burst undone (what training without the burst would
have reached), and the snapshot taken before the burst.
"""

from __future__ import annotations

from enum import Enum

import torch

from evolora.economy.adapters import delta, lora_slots

MIN_FACTOR = 0.1  # the smallest singular-value factor (0 would make the burst irreversible)


class BurstOutcome(str, Enum):
    """Which candidate a judged burst leaves in the model."""

    KEPT = "kept"  # the burst with the window's training
    UNDONE = "undone"  # the window's training with the burst undone
    RESTORED = "restored"  # the snapshot from before the burst


@torch.no_grad()
def burst(
    model, rank: int, top_k: int, scale: float, generator: torch.Generator
) -> tuple[float, dict[str, torch.Tensor]]:
    """Perturb every adapter's top singular values in place; return the mean |relative change|
    and the map of each layer (`{name}.U`: U_k, `{name}.f`: the factors) that `undo` inverts."""
    changes = []
    maps: dict[str, torch.Tensor] = {}
    for slot in lora_slots(model):
        U, S, _ = torch.linalg.svd(delta(slot), full_matrices=False)
        k = min(top_k, rank, int((S > 1e-12).sum()))
        if k == 0:
            continue
        z = torch.randn(k, generator=generator).to(S.device, S.dtype)
        factor = (1.0 + scale * z).clamp(min=MIN_FACTOR)
        Uk = U[:, :k].to(slot.B.dtype)
        _rescale(slot, Uk, factor.to(slot.B.dtype))
        maps[f"{slot.name}.U"], maps[f"{slot.name}.f"] = Uk.clone(), factor.clone()
        changes.append(float((factor - 1).abs().mean()))
    return (sum(changes) / len(changes) if changes else 0.0), maps


@torch.no_grad()
def undo(model, maps: dict[str, torch.Tensor]) -> None:
    """Apply the inverse of the burst that returned `maps` to the current factors, in place."""
    for slot in lora_slots(model):
        if f"{slot.name}.U" in maps:
            _rescale(slot, maps[f"{slot.name}.U"], 1.0 / maps[f"{slot.name}.f"])


def _rescale(slot, Uk: torch.Tensor, factor: torch.Tensor) -> None:
    slot.B += Uk @ ((factor - 1.0)[:, None] * (Uk.T @ slot.B))


def verdict(burst_loss: float, undone_loss: float, reference: float) -> BurstOutcome:
    """The candidate with the lowest validation loss (ties go to undoing the burst, then to
    keeping the window's training): the burst is kept only when it beats both the same training
    without it and the weights from before it."""
    if burst_loss < min(undone_loss, reference):
        return BurstOutcome.KEPT
    return BurstOutcome.UNDONE if undone_loss <= reference else BurstOutcome.RESTORED
