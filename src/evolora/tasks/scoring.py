"""One entry point that scores any example: generated (family scorer) or loaded (named scorer)."""

from __future__ import annotations

from typing import Any

from evolora.errors import EvoloraError
from evolora.tasks.base import Example
from evolora.tasks.registry import get_family, is_family
from evolora.tasks.scorers import SCORERS, exact_score


def score_example(example: Example, completion: Any) -> float:
    """Score `completion` for `example` in [0, 1].

    An example whose `meta` names a scorer (datasets do) uses that named scorer; otherwise the
    scorer of its registered family; an example of an unknown family falls back to exact match.
    """
    name = example.meta.get("scorer") if example.meta else None
    if name is not None:
        if name not in SCORERS:
            raise EvoloraError(
                f"Example scorer {name!r} is unknown; valid scorers are {', '.join(SCORERS)}."
            )
        return SCORERS[name](example.answer, completion)
    if is_family(example.family):
        return get_family(example.family).score(example, completion)
    return exact_score(example.answer, completion)


score = score_example
