"""The batched multi-LoRA linear layer: one forward in which every row has its own adapter.

While a population is attached, each target `nn.Linear` of the host is replaced by a
`PopulationLinear` that keeps the original Linear (no weight copy) and, for every row b of the
batch, adds ``scale * (x_b A_i^T) B_i^T`` with ``i = adapter_ids[b]``; ``-1`` adds nothing.

Two kernels compute the low-rank term, both as two batched matmuls with no Python loop over
adapters (they differ only in what they copy):

- gather: index A and B by row, one (r, in) and (out, r) copy per row (Punica's BGMV, Chen et al.
  2023). Copies b * r * (in + out) numbers, independent of the tokens per row.
- segmented: group the rows by adapter into S segments of G rows (padded) and run one matmul per
  segment inside a `bmm` (Punica's SGMV / S-LoRA). Each adapter is read once; when the adapter rows
  already sit in equal consecutive blocks (the same prompts for every adapter) the activations are
  used as views, otherwise rows are copied in and out: S * G * tokens * (in + out) numbers.
  Without gradients, each layer keeps its segments' factors (views of A and B, or their copies
  for a subset of adapters, and scale * B^T) for the whole `route(...)`, so a decode
  step neither indexes nor transposes them again and adds the term with one in-place `baddbmm_`;
  an in-place change of A or B (its version counter) renews them. With gradients, a batch of
  equal one-adapter blocks (a learning step on one organelle's examples) uses the same per-block
  products out of place; other layouts gather.

`Routing.kernel_for` picks the one that copies less (the measurements behind this rule are in
benchmarks/population_throughput.py, kernel sweep).

Under a bf16 host (`evolora.hosts.precision.run_in`) the base product is bf16 and returned in
fp32 (cast inline: the block's casting hooks cost more than the small product itself), so the
low-rank term runs in fp32 with the fp32 factors. (Computing x A^T in bf16, from the bf16 copy
of x the base product reads, made the routed forward 0.87x as fast, though that product alone
measured faster in isolation, so it is not used.) Under bf16 autocast the factors stay fp32
(the master copy) and the low-rank term runs in the base output's type (bf16), with one exception:
one-token rows (a decode step) compute it in fp32, where rank-r bf16 matmuls of a few rows
measured slower on CPU than fp32 ones; the fp32 term is then added into the bf16 output. (An
fp32 term for many-token rows was measured ~10x slower: adding an fp32 tensor into a bf16 one
in place takes a slow mixed-type path.)
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from evolora.errors import EvoloraError
from evolora.hosts.precision import bf16_copies


@dataclass
class Routing:
    """Which adapter each row of the running batch uses, prepared once per `route(...)`."""

    ids: torch.Tensor  # (B,) long, -1 = bare
    safe_ids: torch.Tensor  # (B,) long, -1 replaced by 0 (zeroed by row_scale)
    row_scale: torch.Tensor  # (B, 1, 1) float32: scale for adapter rows, 0 for bare rows
    active: bool  # at least one row uses an adapter
    adapters: torch.Tensor  # (S,) the adapter of each segment
    identity: bool  # adapters == 0..n-1 (A and B need no indexing)
    block: tuple[int, int] | None  # rows [lo, hi) = S equal consecutive one-adapter blocks
    slots: torch.Tensor  # (S, G) row index of each slot (padding repeats a row of the segment)
    slot_scale: torch.Tensor  # (S, G, 1, 1) float32: scale for real slots, 0 for padding
    rank: int
    scale: float
    kernel: str  # "auto", "gather" or "segmented"

    @classmethod
    def build(cls, ids: list[int], n: int, rank: int, scale: float, device: torch.device,
              kernel: str) -> Routing:
        """Prepare the routing tables for one batch of adapter ids (already validated)."""
        rows_of: dict[int, list[int]] = {}
        for row, adapter in enumerate(ids):
            if adapter >= 0:
                rows_of.setdefault(adapter, []).append(row)
        adapters = list(rows_of)  # in order of first appearance
        width = max((len(r) for r in rows_of.values()), default=0)
        slots = [rows + rows[:1] * (width - len(rows)) for rows in rows_of.values()]
        real = [[1.0] * len(rows) + [0.0] * (width - len(rows)) for rows in rows_of.values()]
        flat = [row for rows in rows_of.values() for row in rows]
        equal_blocks = all(len(r) == width for r in rows_of.values())
        consecutive = bool(flat) and flat == list(range(flat[0], flat[0] + len(flat)))
        ids_t = torch.tensor(ids, dtype=torch.long, device=device)
        return cls(
            ids=ids_t,
            safe_ids=ids_t.clamp(min=0),
            row_scale=((ids_t >= 0).float() * scale).view(-1, 1, 1),
            active=bool(adapters),
            adapters=torch.tensor(adapters, dtype=torch.long, device=device),
            identity=adapters == list(range(n)),
            block=(flat[0], flat[0] + len(flat)) if equal_blocks and consecutive else None,
            slots=torch.tensor(slots, dtype=torch.long, device=device).view(len(adapters), width),
            slot_scale=torch.tensor(real, device=device).view(len(adapters), width, 1, 1) * scale,
            rank=rank,
            scale=scale,
            kernel=kernel,
        )

    def kernel_for(self, tokens_per_row: int) -> str:
        """The kernel that copies fewer numbers for rows of `tokens_per_row` tokens (or the forced
        one): gather copies B * r per feature, segmented S * G * tokens (nothing for a block)."""
        if self.kernel != "auto":
            return self.kernel
        if self.block is not None:
            return "segmented"
        segmented_copies = self.slots.numel() * tokens_per_row
        if not self.identity:
            segmented_copies += len(self.adapters) * self.rank
        return "segmented" if segmented_copies <= len(self.ids) * self.rank else "gather"


class PopulationLinear(nn.Module):
    """A target Linear of the host plus the population's per-row low-rank updates."""

    def __init__(self, base: nn.Linear, population, name: str) -> None:
        super().__init__()
        self.base = base
        self.layer_name = name
        self._plain = type(base) is nn.Linear  # its forward is exactly functional.linear
        object.__setattr__(self, "_population", population)  # not a submodule, not in state_dict
        object.__setattr__(self, "_kept", None)  # see _routed

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
        base = self.base
        if self._plain and base.weight.dtype == x.dtype:
            y = functional.linear(x, base.weight, base.bias)
        else:  # a bf16 host: the cast its hooks do, inline (they cost more than the product)
            copies = bf16_copies(base) if self._plain and x.dtype == torch.float32 else None
            y = base(x) if copies is None else functional.linear(x.bfloat16(), *copies).float()
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
        if (x.dtype == y.dtype == a.dtype and not torch.is_grad_enabled()
                and routing.kernel_for(x3.shape[1]) == "segmented"
                and not torch.is_autocast_enabled(x.device.type)):
            # The common no-grad case (every decode step, every scoring forward): the routing's
            # factors are prepared once per route, not once per call.
            factors = self._routed(routing, a, b)
            _add_segments(_segment_product(x3, factors.a_t, routing), factors.b_t, y3, routing,
                          factors.b_scaled)
            return y
        compute = a.dtype if x3.shape[1] == 1 else y.dtype  # see the module docstring
        if x3.dtype != compute:
            x3 = x3.to(compute)
        if a.dtype != compute:
            a, b = a.to(compute), b.to(compute)
        device_type = x.device.type
        exact = torch.autocast(device_type, enabled=False) if torch.is_autocast_enabled(
            device_type) else nullcontext()
        with exact:
            if torch.is_grad_enabled():  # out of place, so autograd can see it
                if (routing.block == (0, batch) and routing.kernel != "gather"
                        and y3.dtype == compute):
                    return _blocks(x3, y3, a, b, routing).view_as(y)
                return _gather(x3, y3, a, b, routing, inplace=False).view_as(y)
            if routing.kernel_for(x3.shape[1]) == "segmented":
                a_t, b_t = _segment_factors(a, b, routing)
                _add_segments(_segment_product(x3, a_t, routing), b_t, y3, routing)
            else:
                _gather(x3, y3, a, b, routing, inplace=True)
        return y

    def _routed(self, routing: Routing, a: torch.Tensor, b: torch.Tensor) -> _KeptFactors:
        """This layer's `_KeptFactors` for `routing`, kept until the routing or the factors
        change (a new tensor, or an in-place change seen by its version counter)."""
        kept = self._kept
        versions = (a._version, b._version)
        if (kept is None or kept[0] is not routing or kept[1] is not a or kept[2] is not b
                or kept[3] != versions):
            kept = (routing, a, b, versions, _KeptFactors(a, b, routing))
            object.__setattr__(self, "_kept", kept)
        return kept[4]

    def extra_repr(self) -> str:
        return f"layer={self.layer_name!r}, rank={self._population.rank}"


def _gather(x3, y3, a, b, routing: Routing, inplace: bool) -> torch.Tensor:
    """y + scale * (x A_i^T) B_i^T with A_i, B_i gathered per row; (B, T, in) -> (B, T, out)."""
    a_rows = a.index_select(0, routing.safe_ids)  # (B, r, in)
    h = torch.bmm(x3, a_rows.transpose(1, 2)) * routing.row_scale.to(x3.dtype)  # (B, T, r)
    b_rows = b.index_select(0, routing.safe_ids).transpose(1, 2)  # (B, r, out)
    if y3.dtype != h.dtype:  # bf16 output, fp32 term: add the term, cast into the output type
        delta = torch.bmm(h, b_rows)
        return y3.add_(delta) if inplace else y3 + delta.to(y3.dtype)
    return y3.baddbmm_(h, b_rows) if inplace else torch.baddbmm(y3, h, b_rows)


def _blocks(x3, y3, a, b, routing: Routing) -> torch.Tensor:
    """y + scale * (x A_i^T) B_i^T out of place, for a batch made of equal one-adapter blocks: each
    adapter's factors are read once for its block (a learning step's rows often share one
    adapter), not copied once per row, and their gradients need no scatter back per row."""
    a_t, b_t = _segment_factors(a, b, routing)
    segments = a_t.shape[0]
    h = torch.bmm(x3.reshape(segments, -1, x3.shape[2]), a_t)
    y_view = y3.reshape(segments, -1, y3.shape[2])
    return torch.baddbmm(y_view, h, b_t, alpha=routing.scale).view(y3.shape)


# The segmented kernel: one matmul per segment of rows sharing adapter i adds
# scale * (x A_i^T) B_i^T in place, in two steps.
def _segment_factors(a, b, routing: Routing) -> tuple[torch.Tensor, torch.Tensor]:
    """The segments' A^T (S, in, r) and B^T (S, r, out)."""
    if not routing.identity:
        a, b = a.index_select(0, routing.adapters), b.index_select(0, routing.adapters)
    return a.transpose(1, 2), b.transpose(1, 2)


class _KeptFactors:
    """What one layer keeps of its segments' factors for a whole route: A^T and B^T
    (`_segment_factors`), and scale * B^T, so adding the term is a single in-place `baddbmm_`
    (a transposed view of B's layout, which `bmm` read faster than a contiguous B^T)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, routing: Routing) -> None:
        self.a_t, self.b_t = _segment_factors(a, b, routing)
        self.b_scaled = (self.b_t.transpose(1, 2) * routing.scale).transpose(1, 2)


def _segment_product(x3, a_t, routing: Routing) -> torch.Tensor:
    """x A_i^T on every slot, (S, G*T, r): views of x for a block, rows copied in otherwise."""
    segments = routing.slots.shape[0]
    d_in = x3.shape[2]
    if routing.block is not None:
        lo, hi = routing.block
        rows = x3 if hi - lo == x3.shape[0] else x3[lo:hi]
        return torch.bmm(rows.reshape(segments, -1, d_in), a_t)
    xs = x3.index_select(0, routing.slots.flatten()).view(segments, -1, d_in)
    return torch.bmm(xs, a_t)


def _add_segments(h, b_t, y3, routing: Routing, b_scaled=None) -> None:
    """y += scale * h B_i^T for the slots' products h (S, G*T, r) of `_segment_product`
    (`b_scaled`: scale * B^T of `_KeptFactors`, when kept)."""
    segments, width = routing.slots.shape
    tokens, d_out = y3.shape[1], y3.shape[2]
    if routing.block is not None:
        lo, hi = routing.block
        rows = y3 if hi - lo == y3.shape[0] else y3[lo:hi]
        y_view = rows.view(segments, -1, d_out)
        if b_scaled is not None and b_scaled.dtype == h.dtype == y3.dtype:
            y_view.baddbmm_(h, b_scaled)
        elif tokens == 1 or y3.dtype != h.dtype:  # decode: a separate add measured faster
            y_view.add_(torch.bmm(h, b_t), alpha=routing.scale)
        else:
            y_view.baddbmm_(h * routing.scale, b_t)
        return
    h = h.view(segments, width, tokens, -1) * routing.slot_scale.to(h.dtype)
    delta = torch.bmm(h.view(segments, width * tokens, -1), b_t)  # (S, G*T, out)
    y3.index_add_(0, routing.slots.flatten(),
                  delta.view(segments * width, tokens, d_out).to(y3.dtype))
