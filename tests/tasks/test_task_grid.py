"""TaskGrid: cells, named grids and the mixture sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from evolora.errors import EvoloraError
from evolora.tasks import TaskGrid, family_names, split_of


def test_cells_are_the_product_of_families_and_difficulties() -> None:
    grid = TaskGrid(["math", "logic"], [1, 3])
    assert grid.cells == [("math", 1), ("math", 3), ("logic", 1), ("logic", 3)]


def test_named_grids() -> None:
    assert len(TaskGrid.named("default").cells) == len(family_names()) * 5
    assert {d for _, d in TaskGrid.named("easy").cells} == {1, 2}
    assert {d for _, d in TaskGrid.named("hard").cells} == {4, 5}
    assert TaskGrid.named("sorting").cells == [("sorting", d) for d in range(1, 6)]
    with pytest.raises(EvoloraError, match="valid grids are default, easy, medium, hard"):
        TaskGrid.named("impossible")


@pytest.mark.parametrize(
    ("families", "difficulties", "message"),
    [
        (["algebra"], [1], "valid families are"),
        (["math"], [6], "valid values are"),
        ([], [1], "non-empty list of families"),
        (["math"], [], "non-empty list of difficulties"),
        ("math", [1], "non-empty list of families"),
    ],
)
def test_bad_grids_are_explained(families, difficulties, message) -> None:
    with pytest.raises(EvoloraError, match=message):
        TaskGrid(families, difficulties)


def test_sample_from_a_cell_and_from_a_split() -> None:
    grid = TaskGrid.named("default")
    rng = np.random.default_rng(0)
    example = grid.sample(rng, cell=("logic", 4), split="holdout")
    assert (example.family, example.difficulty) == ("logic", 4)
    assert split_of(example) == "holdout"
    with pytest.raises(EvoloraError, match="not in this grid"):
        TaskGrid(["math"], [1]).sample(rng, cell=("math", 2))


def test_uniform_batch_covers_every_cell() -> None:
    grid = TaskGrid(["math", "sorting"], [1, 2])
    batch = grid.sample_batch(np.random.default_rng(0), 400, split="train")
    counts = Counter((e.family, e.difficulty) for e in batch)
    assert set(counts) == set(grid.cells)
    assert min(counts.values()) > 60
    assert all(split_of(e) == "train" for e in batch)


def test_weighted_batch_follows_the_weights() -> None:
    grid = TaskGrid(["math", "logic"], [1])
    rng = np.random.default_rng(0)
    counts = Counter(e.family for e in grid.sample_batch(rng, 2000, weights=[3, 1]))
    assert 0.70 < counts["math"] / 2000 < 0.80
    only_logic = grid.sample_batch(rng, 50, weights={("logic", 1): 1.0})
    assert {e.family for e in only_logic} == {"logic"}


def test_batches_are_reproducible() -> None:
    grid = TaskGrid.named("easy")
    a = grid.sample_batch(np.random.default_rng(9), 30, split="holdout")
    b = grid.sample_batch(np.random.default_rng(9), 30, split="holdout")
    assert a == b


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0], "one per cell"),
        ([1.0, -1.0], "non-negative"),
        ([0.0, 0.0], "not all zero"),
        ({("math", 5): 1.0}, "not in this grid"),
    ],
)
def test_bad_weights_are_explained(weights, message) -> None:
    with pytest.raises(EvoloraError, match=message):
        TaskGrid(["math", "logic"], [1]).sample_batch(np.random.default_rng(0), 5, weights=weights)
