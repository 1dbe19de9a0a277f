"""Sedenions: the 16-dimensional Cayley–Dickson algebra, batched over leading tensor dimensions.

Cayley–Dickson doubling (Baez 2002, "The Octonions", §2.2): a pair (a, b) of 2^(n-1)-ions
multiplies as

    (a, b)(c, d) = (a c − d* b,  d a + b c*)

with conjugation (a, b)* = (a*, −b). Basis units multiply as e_i e_j = s_ij e_(i XOR j), so the
product is (x y)_k = Σ_(i XOR j = k) s_ij x_i y_j, computed as the outer product x y^T (256
numbers) times the (256, 16) structure matrix: one GEMM, 4096 multiply-adds per product.

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
def structure(dim: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """The structure tensor as a (dim², dim) matrix: row i·dim + j holds s_ij at column i XOR j."""
    table = torch.zeros(dim, dim, dim, dtype=dtype)
    signs = torch.as_tensor(sign_table(dim), dtype=dtype)
    for i in range(dim):
        for j in range(dim):
            table[i, j, i ^ j] = signs[i, j]
    return table.reshape(dim * dim, dim).to(device)


def multiply(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The sedenion (any 2^n-ion) product over the last dimension; shapes broadcast. (..., 16).

    Computed as (x ⊗ y) · S: the outer product against the structure matrix, one GEMM (faster
    and lighter to differentiate than gathering partners)."""
    dim = x.shape[-1]
    x, y = torch.broadcast_tensors(x, y)
    outer = (x.unsqueeze(-1) * y.unsqueeze(-2)).flatten(-2)  # (..., dim²)
    return outer @ structure(dim, str(x.device), x.dtype)


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
