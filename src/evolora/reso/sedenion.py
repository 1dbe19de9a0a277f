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
def _structures(dim: int, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """The structure tensor as (dim², dim) matrices: S[(i, j), k] = s_ij where k = i XOR j,
    and its two transposes S[(k, j), i] and S[(i, k), j], which give the product's gradients in
    x and in y."""
    table = torch.zeros(dim, dim, dim, dtype=dtype)
    signs = torch.as_tensor(sign_table(dim), dtype=dtype)
    for i in range(dim):
        for j in range(dim):
            table[i, j, i ^ j] = signs[i, j]
    return tuple(t.reshape(dim * dim, dim).contiguous().to(device) for t in (
        table, table.permute(2, 1, 0), table.permute(0, 2, 1)))


def _outer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.unsqueeze(-1) * y.unsqueeze(-2)).flatten(-2)


class _Product(torch.autograd.Function):
    """(x ⊗ y) · S with a hand-written backward: the gradients are the same kind of bilinear
    product, (g ⊗ y) · S_x and (x ⊗ g) · S_y, so no (…, dim²) intermediate is kept."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, y)
        return _outer(x, y) @ _structures(x.shape[-1], str(x.device), x.dtype)[0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, y = ctx.saved_tensors
        _, s_x, s_y = _structures(x.shape[-1], str(x.device), x.dtype)
        grad_x = _outer(grad, y) @ s_x if ctx.needs_input_grad[0] else None
        grad_y = _outer(x, grad) @ s_y if ctx.needs_input_grad[1] else None
        return grad_x, grad_y


def multiply(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The sedenion (any 2^n-ion) product over the last dimension; shapes broadcast. (..., 16).

    Computed as (x ⊗ y) · S: the outer product against the structure matrix, one GEMM (faster
    and lighter to differentiate than gathering partners); the backward is two more such
    products."""
    x, y = torch.broadcast_tensors(x, y)
    return _Product.apply(x, y)


def conjugate(x: torch.Tensor) -> torch.Tensor:
    """x* : the real part kept, every imaginary part negated. (..., 16)."""
    return x * _conjugation(x.shape[-1], str(x.device), x.dtype)


@lru_cache(maxsize=8)
def _conjugation(dim: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    signs = -torch.ones(dim, dtype=dtype)
    signs[0] = 1.0
    return signs.to(device)


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
