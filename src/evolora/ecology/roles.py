"""What each training prompt is for: learning, foraging, or assimilation's holdout probe.

The train split is cut again by a stable hash of the prompt, so the three uses never share a
prompt: learning rules train only on `learn` prompts; foraging episodes, whose paired edges are the
evidence that routing and assimilation rest on, use only `forage` prompts; the assimilation probe
uses only `probe` prompts. (The evaluation holdout is the task layer's own holdout split.)
"""

from __future__ import annotations

import hashlib
from enum import Enum

import numpy as np

from evolora.tasks import Example, TaskGrid


class Role(str, Enum):
    """The use a training prompt is reserved for."""

    learn = "learn"
    forage = "forage"
    probe = "probe"


def role_of(example: Example, probe_fraction: float, forage_fraction: float) -> Role:
    """The role of a train-split example, from its prompt alone (the same in every run)."""
    digest = hashlib.sha256(b"role:" + example.prompt.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < probe_fraction:
        return Role.probe
    if u < probe_fraction + forage_fraction:
        return Role.forage
    return Role.learn


def draw_example(grid: TaskGrid, rng: np.random.Generator, cell, role: Role, split) -> Example:
    """A train-split example of `cell` whose prompt is reserved for `role` (split: the run's
    `train_split` settings)."""
    while True:
        example = grid.sample(rng, cell=cell, split="train")
        if role_of(example, split.probe_fraction, split.forage_fraction) is role:
            return example


def routing_prompts(grid: TaskGrid, split, per_cell: int, seed: int) -> dict:
    """Per cell, up to `per_cell` distinct forage-role prompts for the routing check (the same for
    the whole run; fewer where a cell holds fewer distinct prompts)."""
    rng = np.random.default_rng([seed, 31337])
    out = {}
    for cell in grid.cells:
        seen: dict[str, Example] = {}
        for _ in range(20 * per_cell):
            example = grid.sample(rng, cell=cell, split="train")
            if role_of(example, split.probe_fraction, split.forage_fraction) is Role.forage:
                seen.setdefault(example.prompt, example)
                if len(seen) == per_cell:
                    break
        out[cell] = list(seen.values())
    return out


def probe_prompts(grid: TaskGrid, split, size: int, seed: int) -> list[Example]:
    """Assimilation's holdout probe: `size` probe-role examples, the grid's cells in turn."""
    rng = np.random.default_rng([seed, 104729])
    probe = []
    while len(probe) < size:
        cell = grid.cells[len(probe) % len(grid.cells)]
        example = grid.sample(rng, cell=cell, split="train")
        if role_of(example, split.probe_fraction, split.forage_fraction) is Role.probe:
            probe.append(example)
    return probe
