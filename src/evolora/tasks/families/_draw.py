"""Small draws from a numpy Generator, built on `Generator.random`.

A scalar `Generator.integers` call costs ~5x a `Generator.random` call, and the split tests draw
100k examples per family, so the families draw through these helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def randint(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in low..high (both included)."""
    return low + min(int(rng.random() * (high - low + 1)), high - low)


def choice(rng: np.random.Generator, options: Sequence[T]) -> T:
    """A uniform pick from a non-empty sequence."""
    return options[randint(rng, 0, len(options) - 1)]


def coin(rng: np.random.Generator, p: float = 0.5) -> bool:
    """True with probability `p`."""
    return rng.random() < p


def shuffled(rng: np.random.Generator, items: Sequence[T]) -> list[T]:
    """A uniformly shuffled copy of `items` (Fisher-Yates)."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = randint(rng, 0, i)
        out[i], out[j] = out[j], out[i]
    return out


def word(rng: np.random.Generator, min_len: int, max_len: int) -> str:
    """A random lowercase word of min_len..max_len letters."""
    return "".join(chr(97 + randint(rng, 0, 25)) for _ in range(randint(rng, min_len, max_len)))
