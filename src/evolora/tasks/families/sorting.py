"""`sorting`: sort numbers or words ascending or descending."""

from __future__ import annotations

import numpy as np

from evolora.tasks.base import Example, TaskFamily
from evolora.tasks.families._draw import Draws
from evolora.tasks.registry import register_family
from evolora.tasks.scorers import position_overlap_score

# (items, largest number, word length range or None, descending allowed) per difficulty
_LEVELS = {
    1: (3, 9, None, False),
    2: (4, 99, None, True),
    3: (5, 99, (2, 4), True),
    4: (7, 999, (3, 5), True),
    5: (10, 9999, (3, 5), True),
}


@register_family
class SortingFamily(TaskFamily):
    """Sort numbers or words ascending or descending; partial credit by position overlap.

    Format: `sort asc: ITEMS =` or `sort desc: ITEMS =` -> the same items sorted, one space apart,
    e.g. `sort asc: 5 2 9 =` -> `2 5 9`, `sort desc: cab ab b =` -> `cab b ab`. Numbers are
    non-negative integers sorted by value; words are lowercase, sorted alphabetically (shorter
    prefix first); duplicates are kept.
    Difficulty: 1 = 3 numbers 0-9, ascending; 2 = 4 numbers 0-99, either order; 3 = 5 items,
    numbers 0-99 or words of 2-4 letters; 4 = 7 items, numbers 0-999 or words of 3-5 letters;
    5 = 10 items, numbers 0-9999 or words of 3-5 letters.
    Scored by the share of positions holding the right item, over the longer of the two lists.
    """

    name = "sorting"

    def generate(self, rng: np.random.Generator, difficulty: int) -> Example:
        """A random list at `difficulty` and its sorted form."""
        draw = Draws(rng)
        size, largest, word_lengths, may_descend = _LEVELS[difficulty]
        descending = may_descend and draw.coin()
        if word_lengths is not None and draw.coin():
            items = [draw.word(*word_lengths) for _ in range(size)]
            ordered = sorted(items, reverse=descending)
            kind = "words"
        else:
            numbers = [draw.randint(0, largest) for _ in range(size)]
            items = [str(n) for n in numbers]
            ordered = [str(n) for n in sorted(numbers, reverse=descending)]
            kind = "numbers"
        order = "desc" if descending else "asc"
        prompt = f"sort {order}: {' '.join(items)} ="
        meta = {"kind": kind, "order": order}
        return Example(prompt, " ".join(ordered), self.name, difficulty, meta)

    def score(self, example: Example, completion: str) -> float:
        """Share of positions where the completion's item equals the sorted list's."""
        return position_overlap_score(example.answer, completion)
