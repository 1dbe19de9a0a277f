"""What the economy does to the LoRA adapters of a PEFT model: set dropout, prune or grow the rank
(by SVD re-factoring), read each adapter's update ΔW = s·B·A, and write a new ΔW back.

The PEFT model is built at `max_rank`; the active rank r is kept by holding the factor slots
beyond r at zero (rows of A, columns of B) and masking their gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ADAPTER = "default"


@dataclass
class LoraSlot:
    """One adapted linear layer: its A (r_max, in) and B (out, r_max) weights and scale s."""

    name: str
    A: torch.nn.Parameter
    B: torch.nn.Parameter
    scale: float
    dropout: torch.nn.Module


def lora_slots(model) -> list[LoraSlot]:
    """Every LoRA layer of a PEFT model, in module order."""
    slots = []
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and ADAPTER in getattr(module, "lora_A", {}):
            slots.append(
                LoraSlot(
                    name,
                    module.lora_A[ADAPTER].weight,
                    module.lora_B[ADAPTER].weight,
                    float(module.scaling[ADAPTER]),
                    module.lora_dropout[ADAPTER],
                )
            )
    return slots


def lora_parameters(model) -> list[torch.nn.Parameter]:
    """The trainable LoRA factors (A then B of each layer)."""
    return [p for slot in lora_slots(model) for p in (slot.A, slot.B)]


def set_dropout(model, p: float) -> None:
    """Set the dropout probability of every LoRA layer's input dropout."""
    for slot in lora_slots(model):
        slot.dropout.p = p


def delta(slot: LoraSlot) -> torch.Tensor:
    """The exact update ΔW = s·B·A of one layer (out, in)."""
    return slot.scale * slot.B.detach() @ slot.A.detach()


@torch.no_grad()
def write_factors(slot: LoraSlot, U: torch.Tensor, S: torch.Tensor, Vh: torch.Tensor) -> None:
    """Store ΔW = U diag(S) Vh (rank k <= r_max) as balanced factors; unused slots become zero."""
    k = S.numel()
    root = torch.sqrt(S.clamp(min=0) / slot.scale)
    slot.A.zero_()
    slot.B.zero_()
    slot.A[:k] = root[:, None] * Vh
    slot.B[:, :k] = U * root[None, :]


@torch.no_grad()
def set_rank(model, rank: int, generator: torch.Generator | None = None) -> bool:
    """Bring every layer to `rank` active slots; slots that become active get a small random A
    row and a zero B column (ΔW unchanged). Growing keeps the active factors as they are;
    pruning re-factors ΔW by truncated SVD (the best rank-r approximation). Returns whether the
    factors were re-written (their optimizer moments then describe other factors)."""
    current = active_rank(model)
    refactor = not 0 < current <= rank
    for slot in lora_slots(model):
        keep = current
        if refactor:
            U, S, Vh = torch.linalg.svd(delta(slot), full_matrices=False)
            keep = min(rank, int((S > 1e-12).sum()))
            write_factors(slot, U[:, :keep], S[:keep], Vh[:keep])
        fresh = torch.randn((rank - keep, slot.A.shape[1]), generator=generator, device="cpu").to(
            slot.A.device, slot.A.dtype
        )
        slot.A[keep:rank] = fresh / slot.A.shape[1] ** 0.5
    return refactor


def mask_gradients(model, rank: int) -> None:
    """Zero the gradients of factor slots beyond `rank`, so inactive slots stay at zero."""
    for slot in lora_slots(model):
        if slot.A.grad is not None:
            slot.A.grad[rank:] = 0
        if slot.B.grad is not None:
            slot.B.grad[:, rank:] = 0


def active_rank(model) -> int:
    """The number of leading factor slots with a non-zero A row (the rank in use)."""
    slot = lora_slots(model)[0]
    rows = slot.A.detach().abs().sum(dim=1) > 0
    return int(rows.nonzero().max()) + 1 if rows.any() else 0


def lora_state(model) -> dict[str, torch.Tensor]:
    """A copy of every LoRA factor, keyed by layer name."""
    state = {}
    for slot in lora_slots(model):
        state[f"{slot.name}.A"] = slot.A.detach().clone()
        state[f"{slot.name}.B"] = slot.B.detach().clone()
    return state


@torch.no_grad()
def load_lora_state(model, state: dict[str, torch.Tensor]) -> None:
    """Write factors saved by `lora_state` back into the model."""
    for slot in lora_slots(model):
        slot.A.copy_(state[f"{slot.name}.A"])
        slot.B.copy_(state[f"{slot.name}.B"])
