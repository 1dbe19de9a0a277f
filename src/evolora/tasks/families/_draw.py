"""`Draws`: the small random draws task families need, served from one numpy Generator.

A scalar call on a numpy Generator costs ~1 µs while reading a float from a list costs ~0.1 µs;
the split tests generate 100k examples per family, so draws come from blocks of `Generator.random`.
The stream is still a pure function of the Generator's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

_BLOCK = 32


class Draws:
    """Uniform integers, picks, coins, shuffles and words drawn from `rng` in blocks."""

    __slots__ = ("_block", "_next", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._block: list[float] = []
        self._next = 0

    def uniform(self) -> float:
        """A uniform float in [0, 1)."""
        if self._next == len(self._block):
            self._block = self._rng.random(_BLOCK).tolist()
            self._next = 0
        self._next += 1
        return self._block[self._next - 1]

    def randint(self, low: int, high: int) -> int:
        """A uniform integer in low..high (both included)."""
        return low + min(int(self.uniform() * (high - low + 1)), high - low)

    def choice(self, options: Sequence[T]) -> T:
        """A uniform pick from a non-empty sequence."""
        return options[self.randint(0, len(options) - 1)]

    def coin(self, p: float = 0.5) -> bool:
        """True with probability `p`."""
        return self.uniform() < p

    def shuffled(self, items: Sequence[T], k: int | None = None) -> list[T]:
        """A uniformly shuffled copy of `items`, or its first `k` items (partial Fisher-Yates)."""
        out = list(items)
        k = len(out) if k is None else min(k, len(out))
        for i in range(k):
            j = self.randint(i, len(out) - 1)
            out[i], out[j] = out[j], out[i]
        return out[:k]

    def word(self, min_len: int, max_len: int) -> str:
        """A random lowercase word of min_len..max_len letters (uniform given its length)."""
        length = self.randint(min_len, max_len)
        code = self.randint(0, 26**length - 1)
        letters = []
        for _ in range(length):
            code, letter = divmod(code, 26)
            letters.append(chr(97 + letter))
        return "".join(letters)
