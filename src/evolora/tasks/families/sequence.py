"""`sequence`: the next term of arithmetic, geometric, Fibonacci-like and interleaved sequences."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from evolora.tasks.base import Example, TaskFamily
from evolora.tasks.families._draw import Draws
from evolora.tasks.registry import register_family
from evolora.tasks.scorers import numeric_score

MAX_ABS_TERM = 99_999
_INTERLEAVED_SHOWN = 6


def _nonzero(draw: Draws, low: int, high: int) -> int:
    value = 0
    while value == 0:
        value = draw.randint(low, high)
    return value


def _arithmetic(draw: Draws, d: int, n: int) -> list[int]:
    start, step = [
        (draw.randint(0, 19), draw.randint(1, 5)),
        (draw.randint(0, 30), _nonzero(draw, -5, 9)),
        (draw.randint(0, 50), _nonzero(draw, -9, 12)),
        (draw.randint(-50, 99), _nonzero(draw, -20, 25)),
        (draw.randint(-99, 99), _nonzero(draw, -40, 40)),
    ][d - 1]
    return _arithmetic_from(start, step, n)


def _geometric(draw: Draws, d: int, n: int) -> list[int]:
    if d <= 2:
        start, ratio = draw.randint(1, 5), 2
    elif d == 3:
        start, ratio = draw.randint(1, 9), draw.randint(2, 3)
    else:
        ratios = (-4, -3, -2, 2, 3, 4) if d == 5 else (-2, 2, 3)
        start, ratio = _nonzero(draw, -9, 9), draw.choice(ratios)
    return [start * ratio**i for i in range(n)]


def _fibonacci_like(draw: Draws, d: int, n: int) -> list[int]:
    low, high = [(0, 9), (0, 9), (0, 9), (-9, 20), (-30, 30)][d - 1]
    terms = [draw.randint(low, high), draw.randint(low, high)]
    while len(terms) < n:
        terms.append(terms[-1] + terms[-2])
    return terms


def _interleaved(draw: Draws, d: int, n: int) -> list[int]:
    span, step = (20, 9) if d == 4 else (50, 20)
    a = _arithmetic_from(draw.randint(-span, span), _nonzero(draw, -step, step), n)
    b = _arithmetic_from(draw.randint(-span, span), _nonzero(draw, -step, step), n)
    return [(a if i % 2 == 0 else b)[i // 2] for i in range(n)]


def _arithmetic_from(start: int, step: int, n: int) -> list[int]:
    return [start + step * i for i in range(n)]


Kind = Callable[[Draws, int, int], list[int]]
# (kinds, terms shown for non-interleaved kinds) per difficulty
_LEVELS: dict[int, tuple[tuple[Kind, ...], int]] = {
    1: ((_arithmetic,), 5),
    2: ((_arithmetic, _geometric), 5),
    3: ((_arithmetic, _geometric, _fibonacci_like), 5),
    4: ((_arithmetic, _geometric, _fibonacci_like, _interleaved), 5),
    5: ((_arithmetic, _geometric, _fibonacci_like, _interleaved), 4),
}


@register_family
class SequenceFamily(TaskFamily):
    """Next term of arithmetic, geometric, Fibonacci-like and interleaved integer sequences.

    Format: `seq: TERMS =` -> `NEXT`, e.g. `seq: 2 4 6 8 =` -> `10`, `seq: 3 6 12 24 48 =` -> `96`,
    `seq: 1 2 3 5 8 =` -> `13`, `seq: 1 10 3 20 5 30 =` -> `7`. Terms are integers one space
    apart; |term| <= 99999. The answer is what the first rule that fits all shown terms predicts,
    in the order: arithmetic, geometric (integer ratio), Fibonacci-like (each term the sum of the
    two before), interleaved (two alternating arithmetic sequences, 6 terms shown); a sequence
    that a simpler rule would continue differently is never generated, so each prompt has one
    answer.
    Difficulty: 1 = arithmetic, small positive steps; 2 = + geometric ratio 2 and negative steps;
    3 = + Fibonacci-like, ratio 2-3; 4 = + interleaved, negative ratios, wider ranges;
    5 = widest ranges and only 4 terms shown (6 for interleaved).
    Scored 1 when the first line is the same integer, else 0.
    """

    name = "sequence"

    def generate(self, rng: np.random.Generator, difficulty: int) -> Example:
        """A sequence at `difficulty` whose shown terms determine the next one."""
        draw = Draws(rng)
        kinds, shown = _LEVELS[difficulty]
        while True:
            kind = draw.choice(kinds)
            n = _INTERLEAVED_SHOWN if kind is _interleaved else shown
            terms = kind(draw, difficulty, n + 1)
            if max(abs(t) for t in terms) > MAX_ABS_TERM or next_term(terms[:-1]) != terms[-1]:
                continue
            prompt = f"seq: {' '.join(str(t) for t in terms[:-1])} ="
            meta = {"kind": kind.__name__.lstrip("_")}
            return Example(prompt, str(terms[-1]), self.name, difficulty, meta)

    def score(self, example: Example, completion: str) -> float:
        """1.0 for the exact next term on the first line, else 0.0."""
        return numeric_score(example.answer, completion)


def next_term(terms: list[int]) -> int | None:
    """The next term by the first rule (in the documented order) that fits all of `terms`."""
    if len(terms) < 3:
        return None
    step = terms[1] - terms[0]
    if all(b - a == step for a, b in itertools.pairwise(terms)):
        return terms[-1] + step
    if terms[0] != 0 and terms[1] % terms[0] == 0:
        ratio = terms[1] // terms[0]
        if all(b == a * ratio for a, b in itertools.pairwise(terms)):
            return terms[-1] * ratio
    if all(c == a + b for a, b, c in zip(terms, terms[1:], terms[2:], strict=False)):
        return terms[-1] + terms[-2]
    if len(terms) >= _INTERLEAVED_SHOWN:
        evens, odds = terms[0::2], terms[1::2]
        if all(
            all(b - a == part[1] - part[0] for a, b in itertools.pairwise(part))
            for part in (evens, odds)
        ):
            part = evens if len(terms) % 2 == 0 else odds
            return part[-1] + part[1] - part[0]
    return None
