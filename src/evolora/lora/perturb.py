"""Seeded low-rank perturbations of population members, for evolution strategies.

The noise eps(seed) of a member has, for every tensor T (each layer's A and B), the form
``eps_T = U V^T / sqrt(k)`` with U (rows, k) and V (cols, k) standard normal and k the population's
``noise_rank`` (so every entry has unit variance). U and V come from one generator seeded with
`seed` on the population's device, so eps is never stored: it is regenerated, bit for bit, from the
seed (EGGROLL's low-rank ES, Sarkar et al. 2025, arXiv:2511.16652, on top of OpenAI-ES,
Salimans et al. 2017).

With the host basis (population.py) the noise moves only R: eps_A = E V_r^T with E (r, r) standard
normal from the seed, and eps_B = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from evolora.errors import EvoloraError


def _factor_shapes(pop) -> list[tuple[str, str, int, int]]:
    """(layer, "A" or "B", rows, cols) of every member tensor, in generation order."""
    shapes = []
    for name in pop.layer_names:
        d_in, d_out = pop.layer_shapes[name]
        shapes += [(name, "A", pop.rank, d_in), (name, "B", d_out, pop.rank)]
    return shapes


def _factors(pop, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (U, V) pair of every member tensor for one seed."""
    _check_seed(seed)
    k = pop.noise_rank
    shapes = _factor_shapes(pop)
    total = sum((rows + cols) * k for _, _, rows, cols in shapes)
    gen = torch.Generator(device=pop.device).manual_seed(seed)
    flat = torch.randn(total, generator=gen, device=pop.device, dtype=torch.float32)
    out, at = [], 0
    for _, _, rows, cols in shapes:
        u = flat[at : at + rows * k].view(rows, k)
        v = flat[at + rows * k : at + (rows + cols) * k].view(cols, k)
        out.append((u, v))
        at += (rows + cols) * k
    return out


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise EvoloraError(f"Perturbation seeds must be integers in [0, 2**63), got {seed!r}.")


def _outer(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """U V^T / sqrt(k) as a sum of k outer products in fixed order (no reduction-order drift)."""
    k = u.shape[-1]
    eps = u[:, :1] * v[:, 0]
    for j in range(1, k):
        eps = eps + u[:, j : j + 1] * v[:, j]
    return eps / math.sqrt(k) if k > 1 else eps


def _cores(pop, seed: int) -> torch.Tensor:
    """The (r, r) noise cores E of all layers for one seed, stacked: (layers, r, r) (host basis)."""
    _check_seed(seed)
    gen = torch.Generator(device=pop.device).manual_seed(seed)
    shape = (len(pop.layer_names), pop.rank, pop.rank)
    return torch.randn(shape, generator=gen, device=pop.device, dtype=torch.float32)


def noise(pop, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """eps(seed) for one member: {layer: (eps_A (r, in), eps_B (out, r))}, float32."""
    if pop.host_basis:
        return {
            name: (core @ v_t, torch.zeros_like(pop.B[name][0], dtype=torch.float32))
            for core, (name, (_, _, v_t)) in zip(
                _cores(pop, seed), pop.host_basis.items(), strict=True
            )
        }
    tensors = [_outer(u, v) for u, v in _factors(pop, seed)]
    return {name: (tensors[2 * i], tensors[2 * i + 1]) for i, name in enumerate(pop.layer_names)}


@torch.no_grad()
def perturb(pop, src: int, dst_ids: Sequence[int], seeds: Sequence[int], sigma: float) -> None:
    """Write antithetic pairs: dst[2k] = theta + sigma eps_k and dst[2k+1] = theta - sigma eps_k.

    theta is member `src` as it was before the call (src may be one of the destinations).
    """
    src = pop._one(src)
    dst = pop._members(list(dst_ids), "perturb dst_ids").tolist()
    seeds = list(seeds)
    if len(dst) != 2 * len(seeds):
        raise EvoloraError(
            f"perturb writes two members per seed: got {len(seeds)} seeds for {len(dst)} dst_ids."
        )
    if len(set(dst)) != len(dst):
        raise EvoloraError(f"perturb dst_ids must be distinct, got {dst}.")
    theta = {name: (pop.A[name][src].clone(), pop.B[name][src].clone()) for name in pop.layer_names}
    for k, seed in enumerate(seeds):
        eps = noise(pop, seed)
        plus, minus = dst[2 * k], dst[2 * k + 1]
        for name, (theta_a, theta_b) in theta.items():
            eps_a, eps_b = eps[name]
            pop.A[name][plus] = theta_a + sigma * eps_a.to(pop.dtype)
            pop.A[name][minus] = theta_a - sigma * eps_a.to(pop.dtype)
            pop.B[name][plus] = theta_b + sigma * eps_b.to(pop.dtype)
            pop.B[name][minus] = theta_b - sigma * eps_b.to(pop.dtype)


@torch.no_grad()
def es_update(pop, member: int, seeds: Sequence[int], weights, sigma: float, lr: float) -> None:
    """theta += lr / (len(seeds) * sigma) * sum_k weights[k] * eps_k on member `member`.

    With antithetic pairs, weights[k] is the fitness difference f(theta + sigma eps_k) -
    f(theta - sigma eps_k), so the step follows the estimated gradient of the fitness.
    """
    member = pop._one(member)
    seeds = list(seeds)
    w = torch.as_tensor(weights, dtype=torch.float32).flatten().to(pop.device)
    if not seeds or len(w) != len(seeds):
        raise EvoloraError(
            f"es_update needs one weight per seed: {len(seeds)} seeds, {len(w)} weights."
        )
    if not sigma > 0:
        raise EvoloraError(f"es_update sigma must be positive, got {sigma}.")
    if pop.host_basis:
        cores = torch.stack([_cores(pop, seed) for seed in seeds])  # (K, layers, r, r)
        step = lr / (len(seeds) * sigma) * torch.einsum("k,klij->lij", w, cores)
        for core, (name, (_, _, v_t)) in zip(step, pop.host_basis.items(), strict=True):
            pop.A[name][member] += (core @ v_t).to(pop.dtype)
        return
    k = pop.noise_rank
    per_seed = [_factors(pop, seed) for seed in seeds]
    coef = lr / (len(seeds) * sigma * math.sqrt(k))
    for t, (name, which, _, _) in enumerate(_factor_shapes(pop)):
        # sum_k w_k U_k V_k^T = [w_1 U_1 ... w_K U_K] [V_1 ... V_K]^T: one GEMM of rank K*k.
        u = torch.cat([w[s] * per_seed[s][t][0] for s in range(len(seeds))], dim=1)
        v = torch.cat([per_seed[s][t][1] for s in range(len(seeds))], dim=1)
        table = pop.A if which == "A" else pop.B
        table[name][member] += (coef * (u @ v.t())).to(pop.dtype)
