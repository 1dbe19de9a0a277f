"""Merges of LoRA adapters on their exact updates ΔW_i = scale * B_i A_i, registered by name.

Averaging the A and B factors separately is not the average of the updates; every method here
works on the products B_i A_i (the shared `scale` factors out of all of them) and returns new
factors (A, B) whose product is the merged update, at the rank asked for. Truncation to that rank
is the best rank-r approximation (truncated SVD, Eckart-Young); `kept_energy` tells how much of the
merged update's squared Frobenius norm the returned factors keep (1.0 = exact).

A method is one function ``fn(factors, weights, rank, generator, **options) -> (A, B, kept)``
registered with `@register_merge("name")`; `merge()` runs it layer by layer.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from evolora.errors import EvoloraError
from evolora.lora.population import LoRAPopulation

Factors = tuple[torch.Tensor, torch.Tensor]  # A (r, in), B (out, r)
MergeMethod = Callable[..., tuple[torch.Tensor, torch.Tensor, float]]
MERGE_METHODS: dict[str, MergeMethod] = {}


@dataclass(frozen=True)
class MergeResult:
    """A merged adapter: per layer (A (rank, in), B (out, rank)) and the energy each layer kept.

    Its update is ``scale * B @ A`` with the members' scale; when `rank` equals a population's rank
    it can be written into a slot with ``population.set_member(i, result.tensors)``.
    """

    tensors: dict[str, Factors]
    rank: int
    kept_energy: dict[str, float]


def register_merge(name: str) -> Callable[[MergeMethod], MergeMethod]:
    """Register a merge method under `name` (see the module docstring for its signature)."""

    def add(fn: MergeMethod) -> MergeMethod:
        MERGE_METHODS[name] = fn
        return fn

    return add


def merge(
    source: LoRAPopulation | Sequence[dict[str, Factors]],
    members: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    method: str = "linear",
    rank: int | None = None,
    seed: int = 0,
    **options,
) -> MergeResult:
    """Merge adapters (population members, or `get_member`-style dicts) into one new adapter.

    weights default to the mean (1/k each); rank defaults to the exact rank for `linear` and to
    the members' rank otherwise; `seed` drives the random methods (dare); options go to the method
    (ties: density=0.2, dare: density=0.5).
    """
    if method not in MERGE_METHODS:
        raise EvoloraError(
            f"Unknown merge method {method!r}; choose one of {', '.join(sorted(MERGE_METHODS))}."
        )
    fn = MERGE_METHODS[method]
    allowed = list(inspect.signature(fn).parameters)[4:]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise EvoloraError(
            f"Merge method {method!r} has no option {unknown[0]!r}; its options are "
            f"{', '.join(allowed) or 'none'}."
        )
    adapters = _adapters(source, members)
    w = _weights(weights, len(adapters))
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 1):
        raise EvoloraError(f"Merge rank must be a positive integer, got {rank!r}.")
    device = next(iter(adapters[0].values()))[0].device
    generator = torch.Generator(device=device).manual_seed(seed)
    tensors, kept = {}, {}
    for name in adapters[0]:
        factors = [adapter[name] for adapter in adapters]
        _check_layer(name, factors)
        a, b, kept[name] = fn(factors, w, rank, generator, **options)
        tensors[name] = (a.float(), b.float())
    return MergeResult(tensors, rank=next(iter(tensors.values()))[0].shape[0], kept_energy=kept)


# ---- methods ----------------------------------------------------------------------------------
@register_merge("linear")
def linear(factors: list[Factors], weights: list[float], rank: int | None, generator):
    """Σ w_i B_i A_i exactly: the factors side by side (rank Σ r_i, zero-padded up to `rank`)."""
    a = torch.cat([a for a, _ in factors])  # (R, in)
    b = torch.cat([w * b for w, (_, b) in zip(weights, factors, strict=True)], dim=1)  # (out, R)
    if rank is not None and rank < a.shape[0]:
        raise EvoloraError(
            f"A linear merge of these adapters is exact at rank {a.shape[0]}; ask for rank >= "
            f"{a.shape[0]}, or use method='svd_soup' to truncate to rank {rank}."
        )
    return *_pad(a, b, rank or a.shape[0]), 1.0


@register_merge("svd_soup")
def svd_soup(factors: list[Factors], weights: list[float], rank: int | None, generator):
    """Σ w_i B_i A_i re-factored to `rank` by truncated SVD (computed on the factors, not dense)."""
    a = torch.cat([a for a, _ in factors]).double()
    b = torch.cat([w * b.double() for w, (_, b) in zip(weights, factors, strict=True)], dim=1)
    # B A = Qb (Rb Ra^T) Qa^T with orthonormal Qb, Qa: only a small (R, R) matrix needs an SVD.
    q_b, r_b = torch.linalg.qr(b)
    q_a, r_a = torch.linalg.qr(a.t())
    u, s, vh = torch.linalg.svd(r_b @ r_a.t())
    return _truncate(q_b @ u, s, vh @ q_a.t(), rank or factors[0][0].shape[0])


@register_merge("ties")
def ties(factors: list[Factors], weights: list[float], rank, generator, density: float = 0.2):
    """TIES (Yadav et al. 2023): trim each ΔW_i to its top `density` entries, elect a sign per
    entry, average the entries that agree with it (weighted), then truncate to `rank`."""
    _check_density(density)
    if any(w <= 0 for w in weights):
        raise EvoloraError(f"ties needs positive weights, got {weights}.")
    deltas = torch.stack([b @ a for a, b in factors])  # (k, out, in)
    keep = max(1, round(density * deltas[0].numel()))
    magnitude = deltas.abs().flatten(1)
    threshold = magnitude.kthvalue(magnitude.shape[1] - keep + 1, dim=1).values
    trimmed = deltas * (deltas.abs() >= threshold.view(-1, 1, 1))
    w = torch.tensor(weights, dtype=deltas.dtype, device=deltas.device).view(-1, 1, 1)
    elected = torch.sign((w * trimmed).sum(0))
    agree = (torch.sign(trimmed) == elected) & (trimmed != 0)
    total = (w * agree).sum(0)
    merged = torch.where(total > 0, (w * trimmed * agree).sum(0) / total.clamp(min=1e-30), 0.0)
    return _factor_dense(merged, rank or factors[0][0].shape[0])


@register_merge("dare")
def dare(factors: list[Factors], weights: list[float], rank, generator, density: float = 0.5):
    """DARE (Yu et al. 2023): drop each entry of ΔW_i with probability 1 - density, rescale the
    rest by 1 / density (seeded), sum with the weights, then truncate to `rank`."""
    _check_density(density)
    merged = 0.0
    for w, (a, b) in zip(weights, factors, strict=True):
        delta = b @ a
        kept = torch.rand(delta.shape, generator=generator, device=delta.device) < density
        merged = merged + (w / density) * delta * kept
    return _factor_dense(merged, rank or factors[0][0].shape[0])


# ---- shared pieces ----------------------------------------------------------------------------
def _truncate(u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, rank: int):
    """Factors (A, B) of U diag(s) Vh cut to `rank` (split sqrt(s) to both sides) + kept energy."""
    total = float((s**2).sum())
    r = min(rank, s.shape[0])
    kept = float((s[:r] ** 2).sum()) / total if total > 0 else 1.0
    root = s[:r].sqrt()
    return *_pad(root[:, None] * vh[:r], u[:, :r] * root, rank), kept


def _factor_dense(delta: torch.Tensor, rank: int):
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    return _truncate(u, s, vh, rank)


def _pad(a: torch.Tensor, b: torch.Tensor, rank: int) -> Factors:
    """Zero rows of A and columns of B up to `rank` (the product is unchanged)."""
    extra = rank - a.shape[0]
    if extra <= 0:
        return a, b
    return (torch.cat([a, a.new_zeros(extra, a.shape[1])]),
            torch.cat([b, b.new_zeros(b.shape[0], extra)], dim=1))


def _adapters(source, members) -> list[dict[str, Factors]]:
    if isinstance(source, LoRAPopulation):
        ids = range(source.n) if members is None else members
        index = source._members(list(ids), "merge members").tolist()
        return [{k: (source.A[k][i], source.B[k][i]) for k in source.layer_names} for i in index]
    adapters = list(source)
    if members is not None:
        bad = [m for m in members if not isinstance(m, int) or not 0 <= m < len(adapters)]
        if bad:
            raise EvoloraError(f"merge members must index the {len(adapters)} adapters; got {bad}.")
        adapters = [adapters[m] for m in members]
    if not adapters:
        raise EvoloraError("merge needs at least one adapter.")
    layers = set(adapters[0])
    for i, adapter in enumerate(adapters[1:], 1):
        if set(adapter) != layers:
            diff = sorted(set(adapter) ^ layers)[:3]
            raise EvoloraError(f"Adapter {i} covers other layers than adapter 0 (e.g. {diff}).")
    return adapters


def _weights(weights, k: int) -> list[float]:
    if k == 0:
        raise EvoloraError("merge needs at least one adapter.")
    w = [1.0 / k] * k if weights is None else [float(x) for x in weights]
    if len(w) != k or not all(math.isfinite(x) for x in w):
        raise EvoloraError(f"merge needs {k} finite weights (one per adapter), got {weights}.")
    return w


def _check_layer(name: str, factors: list[Factors]) -> None:
    a0, b0 = factors[0]
    for i, (a, b) in enumerate(factors):
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1] or (
            a.shape[1], b.shape[0]) != (a0.shape[1], b0.shape[0]):
            raise EvoloraError(
                f"Layer {name}: adapter {i} has A {tuple(a.shape)} and B {tuple(b.shape)}, which "
                f"do not pair with each other or with adapter 0's A {tuple(a0.shape)}, "
                f"B {tuple(b0.shape)}."
            )


def _check_density(density: float) -> None:
    if not 0 < density <= 1:
        raise EvoloraError(f"density must be in (0, 1], got {density}.")
