"""Regions: axis-aligned boxes of the unit cube that agents and teams own.

A `Box` is a frozen value (lo, hi); splitting, shrinking and overlap are pure functions of boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_WIDTH = 1e-6


@dataclass(frozen=True, eq=False)
class Box:
    """The box lo <= u <= hi inside the unit cube."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def unit(cls, dim: int) -> Box:
        """The whole unit cube."""
        return cls(np.zeros(dim), np.ones(dim))

    @classmethod
    def around(cls, center: np.ndarray, width: np.ndarray | float) -> Box:
        """A box of `width` centred on `center`, slid (not cut) to stay inside the cube."""
        width = np.clip(np.broadcast_to(width, center.shape).astype(float), MIN_WIDTH, 1.0)
        lo = np.clip(center - width / 2, 0.0, 1.0 - width)
        return cls(lo, lo + width)

    @property
    def width(self) -> np.ndarray:
        """Side lengths."""
        return self.hi - self.lo

    @property
    def center(self) -> np.ndarray:
        """Midpoint."""
        return (self.lo + self.hi) / 2

    def volume(self) -> float:
        """Product of the side lengths (the fraction of the cube it covers)."""
        return float(np.prod(self.width))

    def contains(self, u: np.ndarray) -> bool:
        """Whether point u lies in the box."""
        return bool(np.all(u >= self.lo - 1e-12) and np.all(u <= self.hi + 1e-12))

    def clip(self, u: np.ndarray) -> np.ndarray:
        """The nearest point of the box to u."""
        return np.clip(u, self.lo, self.hi)

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Uniform point(s) in the box."""
        shape = self.lo.shape if n is None else (n, *self.lo.shape)
        return self.lo + rng.random(shape) * self.width

    def to_list(self) -> list[list[float]]:
        """[[lo...], [hi...]] for JSON."""
        return [self.lo.round(6).tolist(), self.hi.round(6).tolist()]

    @classmethod
    def from_list(cls, data: list[list[float]]) -> Box:
        """Inverse of `to_list`."""
        return cls(np.asarray(data[0], float), np.asarray(data[1], float))


def intersection(a: Box, b: Box) -> Box | None:
    """The common part of two boxes, or None when they do not meet."""
    lo, hi = np.maximum(a.lo, b.lo), np.minimum(a.hi, b.hi)
    return Box(lo, hi) if np.all(hi > lo) else None


def overlap(a: Box, b: Box) -> float:
    """How much two boxes share, per side: the geometric mean over coordinates of the
    intersection's side over the smaller box's side (1 = one inside the other, 0 = apart).

    A per-side mean rather than a volume ratio, so that it means the same in 2 and in 20
    dimensions (volume ratios vanish as the dimension grows).
    """
    lo, hi = np.maximum(a.lo, b.lo), np.minimum(a.hi, b.hi)
    shared = np.clip(hi - lo, 0.0, None)
    if np.any(shared <= 0):
        return 0.0
    smaller = np.minimum(a.width, b.width)
    return float(np.exp(np.mean(np.log(shared / smaller))))


def split(box: Box, point: np.ndarray) -> tuple[Box, Box]:
    """Cut the box across its widest side, halfway between `point` and the farther edge:
    (the part holding the point, with room on both sides of it; the far part)."""
    axis = int(np.argmax(box.width))
    lo, hi = box.lo[axis], box.hi[axis]
    x = float(np.clip(point[axis], lo, hi))
    cut = (x + hi) / 2 if hi - x >= x - lo else (lo + x) / 2
    left_hi, right_lo = box.hi.copy(), box.lo.copy()
    left_hi[axis], right_lo[axis] = cut, cut
    left, right = Box(box.lo.copy(), left_hi), Box(right_lo, box.hi.copy())
    return (left, right) if point[axis] <= cut else (right, left)


def shrink(box: Box, center: np.ndarray, factor: float) -> Box:
    """A box `factor` times as wide per side, centred as close to `center` as the box allows."""
    width = np.maximum(box.width * factor, MIN_WIDTH)
    lo = np.clip(center - width / 2, box.lo, np.maximum(box.lo, box.hi - width))
    return Box(lo, np.minimum(lo + width, 1.0))
