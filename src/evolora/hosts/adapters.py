"""The hook through which an adapter population (e.g. `evolora.lora.LoRAPopulation`) joins.

A `Host` wraps every forward of a micro-batch (prefill and each cached decode step) in
`with adapters.route(ids):`, where `ids` is a LongTensor [batch] on the host's device, one entry per
row, and -1 means "bare host".
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import torch

from evolora.errors import EvoloraError

BARE_HOST = -1


@runtime_checkable
class AdapterRouter(Protocol):
    """Anything that can route the rows of a batch to adapters for the forwards run inside it."""

    def route(self, adapter_ids: torch.Tensor) -> AbstractContextManager[None]:
        """Return a context in which row `b` of every forward uses adapter `adapter_ids[b]`."""
        ...


def adapter_id_tensor(
    adapters: AdapterRouter | None,
    adapter_ids: Sequence[int] | torch.Tensor | None,
    n_prompts: int,
    device: torch.device,
) -> torch.Tensor | None:
    """The user's adapter ids, checked against the prompts, as a LongTensor [n] on `device`."""
    if adapters is None:
        if adapter_ids is not None:
            raise EvoloraError("adapter_ids were given without adapters; pass the population too.")
        return None
    if adapter_ids is None:
        raise EvoloraError("adapters were given without adapter_ids; give one id per prompt.")
    ids = torch.as_tensor(adapter_ids, dtype=torch.long).reshape(-1)
    if ids.numel() != n_prompts:
        raise EvoloraError(
            f"adapter_ids has {ids.numel()} entries but there are {n_prompts} prompts; "
            "give exactly one adapter id per prompt (-1 for the bare host)."
        )
    return ids.to(device)
