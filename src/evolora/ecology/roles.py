"""What each prompt is for: learning, the colony's own decisions, or the final evaluation.

The built-in host was trained on the task layer's train split, so on train prompts it answers
from memory (on the smallest cells it recalls every answer): an organelle compared with it there
is judged against recall, not skill. Every decision the colony takes from paired comparisons -
foraging rewards and the edges behind routing and assimilation, the assimilation probe, the
routing check - therefore uses `select` prompts: a share of the holdout split, cut by a stable
hash of the prompt. The rest of the holdout split (`evaluate`) is the final evaluation's alone,
and learning rules train on the train split only. No prompt has two roles.
"""

from __future__ import annotations

import hashlib
from enum import Enum

import numpy as np

from evolora.tasks import Example, TaskGrid
from evolora.tasks.splits import split_of

DRAWS_PER_EXAMPLE = 20  # draws allowed per wanted example before a small cell is taken as it is


class Role(str, Enum):
    """The use a prompt is reserved for."""

    learn = "learn"
    select = "select"
    evaluate = "evaluate"


def role_of(example: Example, selection_fraction: float) -> Role:
    """The role of an example, from its prompt alone (the same in every run): train-split
    prompts are learned from; a `selection_fraction` share of the holdout split is the colony's
    to decide with, the rest is evaluated on."""
    if split_of(example) == "train":
        return Role.learn
    digest = hashlib.sha256(b"role:" + example.prompt.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return Role.select if u < selection_fraction else Role.evaluate


def draw_example(
    grid: TaskGrid, rng: np.random.Generator, cell, role: Role, selection_fraction: float
) -> Example:
    """An example of `cell` whose prompt is reserved for `role`."""
    split = "train" if role is Role.learn else "holdout"
    while True:
        example = grid.sample(rng, cell=cell, split=split)
        if role_of(example, selection_fraction) is role:
            return example


def distinct_examples(
    grid: TaskGrid,
    rng: np.random.Generator,
    cell,
    role: Role,
    selection_fraction: float,
    wanted: int,
) -> list[Example]:
    """Up to `wanted` examples of `cell` with distinct prompts, all reserved for `role` (fewer
    where the cell holds fewer distinct prompts: a repeated prompt would count one answer twice);
    DRAWS_PER_EXAMPLE draws are allowed per wanted example."""
    split = "train" if role is Role.learn else "holdout"
    seen: dict[str, Example] = {}
    for _ in range(DRAWS_PER_EXAMPLE * wanted):
        example = grid.sample(rng, cell=cell, split=split)
        if role_of(example, selection_fraction) is role:
            seen.setdefault(example.prompt, example)
            if len(seen) == wanted:
                break
    return list(seen.values())


def routing_prompts(grid: TaskGrid, selection_fraction: float, per_cell: int, seed: int) -> dict:
    """Per cell, up to `per_cell` distinct selection prompts for the routing check (the same for
    the whole run)."""
    rng = np.random.default_rng([seed, 31337])
    return {
        cell: distinct_examples(grid, rng, cell, Role.select, selection_fraction, per_cell)
        for cell in grid.cells
    }


def probe_prompts(grid: TaskGrid, selection_fraction: float, size: int, seed: int) -> list:
    """Assimilation's probe: about `size` distinct selection prompts, an equal share per cell
    (fewer where a cell holds fewer: a repeated prompt would count one answer twice and make
    the probe's paired standard error look smaller than it is)."""
    rng = np.random.default_rng([seed, 104729])
    share = -(-size // len(grid.cells))
    return [
        example
        for cell in grid.cells
        for example in distinct_examples(grid, rng, cell, Role.select, selection_fraction, share)
    ]
