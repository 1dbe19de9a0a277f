"""The batched multi-LoRA linear layer: one forward in which every row has its own adapter.

While a population is attached, each target `nn.Linear` of the host is replaced by a
`PopulationLinear` that keeps the original Linear (no weight copy) and, for every row b of the
batch, adds ``scale * (x_b A_i^T) B_i^T`` with ``i = adapter_ids[b]``; ``-1`` adds nothing.

Two kernels compute the low-rank term (both exact, they differ only in speed):

- gather: index the stacked A/B by row and run two `bmm`s. Python cost is constant in the number
  of adapters, memory traffic grows with the batch (the BGMV kernel of Punica, Chen et al. 2023).
- segmented: one pair of GEMMs per run of rows sharing an adapter, on views when the runs are
  contiguous (Punica's SGMV / S-LoRA). Fewest FLOPs and no copies, one Python step per run.

`Routing.kernel_for` picks one per call from the number of tokens each segment brings;
`benchmarks/population_throughput.py` measured the crossover.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from evolora.errors import EvoloraError

# A segment must bring at least this many tokens to one GEMM pair for the segmented kernel to beat
# gather (measured on 2 CPU cores; prefill of 32-token rows is far above it, decode far below).
SEGMENTED_MIN_TOKENS = 64


@dataclass
class Routing:
    """Which adapter each row of the running batch uses, prepared once per `route(...)`."""

    ids: torch.Tensor  # [batch] long, -1 = bare
    safe_ids: torch.Tensor  # [batch] long, -1 replaced by 0 (masked by row_scale)
    row_scale: torch.Tensor  # [batch, 1, 1] float32: scale for adapter rows, 0 for bare rows
    active: bool  # at least one row uses an adapter
    runs: list[tuple[int, int, int]] | None  # (adapter, start, stop) when each adapter is one run
    groups: list[tuple[int, torch.Tensor]]  # (adapter, row indices), used when runs is None
    kernel: str  # "auto", "gather" or "segmented"

    @classmethod
    def build(cls, ids: list[int], scale: float, device: torch.device, kernel: str) -> Routing:
        """Prepare the routing tables for one batch of adapter ids (already validated)."""
        runs: list[tuple[int, int, int]] = []
        for row, adapter in enumerate(ids):
            if adapter < 0:
                continue
            if runs and runs[-1][0] == adapter and runs[-1][2] == row:
                runs[-1] = (adapter, runs[-1][1], row + 1)
            else:
                runs.append((adapter, row, row + 1))
        distinct = sorted({i for i in ids if i >= 0})
        contiguous = len(runs) == len(distinct)
        groups = [] if contiguous else [
            (a, torch.tensor([r for r, i in enumerate(ids) if i == a], device=device))
            for a in distinct
        ]
        ids_t = torch.tensor(ids, dtype=torch.long, device=device)
        return cls(
            ids=ids_t,
            safe_ids=ids_t.clamp(min=0),
            row_scale=((ids_t >= 0).float() * scale).view(-1, 1, 1),
            active=bool(distinct),
            runs=runs if contiguous else None,
            groups=groups,
            kernel=kernel,
        )

    def kernel_for(self, tokens_per_row: int) -> str:
        """The kernel to use for a call whose rows carry `tokens_per_row` tokens each."""
        if self.kernel != "auto":
            return self.kernel
        segments = len(self.runs) if self.runs is not None else len(self.groups)
        tokens_per_segment = tokens_per_row * len(self.ids) / max(segments, 1)
        return "segmented" if tokens_per_segment >= SEGMENTED_MIN_TOKENS else "gather"


class PopulationLinear(nn.Module):
    """A target Linear of the host plus the population's per-row low-rank updates."""

    def __init__(self, base: nn.Linear, population, name: str) -> None:
        super().__init__()
        self.base = base
        self.layer_name = name
        object.__setattr__(self, "_population", population)  # not a submodule, not in state_dict

    # Code that inspects a projection (dtype checks, shapes) still sees the original Linear.
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing: Routing | None = self._population._routing
        y = self.base(x)
        if routing is None or not routing.active:
            return y
        batch = routing.ids.shape[0]
        if x.dim() < 2 or x.shape[0] != batch:
            raise EvoloraError(
                f"Layer {self.layer_name} got a batch of {x.shape[0] if x.dim() else 0} rows but "
                f"the population is routed with {batch} adapter ids; route exactly one id per row."
            )
        a = self._population.A[self.layer_name]
        b = self._population.B[self.layer_name]
        x3 = x.reshape(batch, -1, x.shape[-1])  # (B, T, in)
        y3 = y.view(batch, -1, y.shape[-1])  # (B, T, out)
        if torch.is_grad_enabled():
            return _gather(x3, y3, a, b, routing, inplace=False).view_as(y)
        if routing.kernel_for(x3.shape[1]) == "segmented":
            _segmented(x3, y3, a, b, routing, self._population.scale)
        else:
            _gather(x3, y3, a, b, routing, inplace=True)
        return y

    def extra_repr(self) -> str:
        return f"layer={self.layer_name!r}, rank={self._population.rank}"


def _gather(x3, y3, a, b, routing: Routing, inplace: bool) -> torch.Tensor:
    """y + scale * (x A_i^T) B_i^T with A_i, B_i gathered per row; (B, T, in) -> (B, T, out)."""
    a_rows = a.index_select(0, routing.safe_ids).to(x3.dtype)  # (B, r, in)
    h = torch.bmm(x3, a_rows.transpose(1, 2)) * routing.row_scale.to(x3.dtype)  # (B, T, r)
    b_rows = b.index_select(0, routing.safe_ids).to(x3.dtype).transpose(1, 2)  # (B, r, out)
    return y3.baddbmm_(h, b_rows) if inplace else torch.baddbmm(y3, h, b_rows)


def _segmented(x3, y3, a, b, routing: Routing, scale: float) -> None:
    """Add scale * (x A_i^T) B_i^T in place, one GEMM pair per segment of rows sharing adapter i."""
    d_in, d_out = x3.shape[-1], y3.shape[-1]
    if routing.runs is not None:
        for adapter, start, stop in routing.runs:
            h = x3[start:stop].reshape(-1, d_in) @ a[adapter].to(x3.dtype).t()  # (rows*T, r)
            y3[start:stop].view(-1, d_out).addmm_(h, b[adapter].to(x3.dtype).t(), alpha=scale)
        return
    tokens = x3.shape[1]
    for adapter, rows in routing.groups:
        h = x3.index_select(0, rows).reshape(-1, d_in) @ a[adapter].to(x3.dtype).t()
        delta = (h @ b[adapter].to(x3.dtype).t()).view(len(rows), tokens, d_out)
        y3.index_add_(0, rows, delta, alpha=scale)
