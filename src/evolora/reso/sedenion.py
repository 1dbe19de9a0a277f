"""Sedenions: the 16-dimensional Cayley–Dickson algebra, batched over leading tensor dimensions.

Cayley–Dickson doubling (Baez 2002, "The Octonions", §2.2): a pair (a, b) of 2^(n-1)-ions
multiplies as

    (a, b)(c, d) = (a c − d* b,  d a + b c*)

with conjugation (a, b)* = (a*, −b). Basis units multiply as e_i e_j = s_ij e_(i XOR j), so the
product is computed from a precomputed sign table: (x y)_k = Σ_i s_(i, i^k) x_i y_(i^k), 256
multiply-adds per product (not the dense 16^3 structure tensor).

Known facts (checked by the tests): e_0 is the unit; x x* = |x|^2 e_0; the norm is multiplicative
on the octonion subalgebra (first 8 axes) but not on sedenions, which have zero divisors; the
product is non-associative already for octonions.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

DIM = 16
AXES = (
    "coherence", "identity", "duality", "harmony", "truth", "consciousness", "beauty",
    "compassion", "intention", "wisdom", "creativity", "stability", "complexity", "connection",
    "presence", "transcendence",
)


def _conj(x: np.ndarray) -> np.ndarray:
    out = -x
    out[0] = x[0]
    return out


def _cd_product(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The Cayley–Dickson product of two real vectors of length 2^n (reference recursion)."""
    n = len(x)
    if n == 1:
        return x * y
    h = n // 2
    a, b, c, d = x[:h], x[h:], y[:h], y[h:]
    return np.concatenate(
        [_cd_product(a, c) - _cd_product(_conj(d), b), _cd_product(d, a) + _cd_product(b, _conj(c))]
    )


@lru_cache(maxsize=4)
def sign_table(dim: int = DIM) -> np.ndarray:
    """s[i, j] with e_i e_j = s[i, j] e_(i XOR j), as float32 (dim, dim)."""
    eye = np.eye(dim)
    signs = np.zeros((dim, dim), dtype=np.float32)
    for i in range(dim):
        for j in range(dim):
            prod = _cd_product(eye[i], eye[j])
            signs[i, j] = prod[i ^ j]
    return signs


@lru_cache(maxsize=8)
def _tables(dim: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    idx = np.arange(dim)
    partner = idx[:, None] ^ idx[None, :]  # partner[i, k] = i ^ k
    signs = sign_table(dim)[idx[:, None], partner]  # s[i, i ^ k]
    return (
        torch.as_tensor(partner, dtype=torch.long, device=device),
        torch.as_tensor(signs, device=device),
    )


def multiply(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The sedenion (any 2^n-ion) product over the last dimension; shapes broadcast. (..., 16)."""
    dim = x.shape[-1]
    partner, signs = _tables(dim, str(x.device))
    y_perm = y[..., partner]  # (..., i, k) = y_(i ^ k)
    return (x.unsqueeze(-1) * y_perm * signs.to(x.dtype)).sum(-2)


def conjugate(x: torch.Tensor) -> torch.Tensor:
    """x* : the real part kept, every imaginary part negated. (..., 16)."""
    return torch.cat([x[..., :1], -x[..., 1:]], dim=-1)


def unit(dim: int = DIM, device: torch.device | str | None = None) -> torch.Tensor:
    """The multiplicative unit e_0."""
    out = torch.zeros(dim, device=device)
    out[0] = 1.0
    return out


def basis(index: int, dim: int = DIM) -> torch.Tensor:
    """The basis unit e_index."""
    out = torch.zeros(dim)
    out[index] = 1.0
    return out


def axis_summary(x: torch.Tensor) -> dict[str, float]:
    """The 16 named axes of one sedenion (16,) as a dict, for reports."""
    return {name: float(v) for name, v in zip(AXES, x.tolist(), strict=True)}
