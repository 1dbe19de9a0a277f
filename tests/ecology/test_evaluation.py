import hashlib

import numpy as np

from evolora.ecology.colony import HOST_SLOT, MERGED_SLOT, Colony
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import (
    best_organelle,
    holdout_examples,
    paired_difference,
    route_table,
)
from evolora.tasks import TaskGrid


class AnsweringHost:
    """A stand-in host: adapter slot s answers each prompt correctly with probability accuracy[s]
    (decided by a fixed hash of the prompt), so the routing decision is known in advance; the
    bare host (HOST_SLOT) answers nothing unless given an accuracy."""

    def __init__(self, examples, accuracy: dict[int, float]):
        self.answers = {ex.prompt: ex.answer for ex in examples}
        self.accuracy = {HOST_SLOT: 0.0, **accuracy}

    def generate(self, prompts, max_new_tokens, adapters, adapter_ids):
        out = []
        for prompt, slot in zip(prompts, adapter_ids, strict=True):
            digest = hashlib.sha256(f"{slot}:{prompt}".encode()).digest()
            lucky = int.from_bytes(digest[:4], "big") / 2**32 < self.accuracy[slot]
            out.append(self.answers[prompt] if lucky else "?")
        return out


def _colony_with_two_organelles(niches=("math", "math")):
    colony = Colony(EcologyConfig())
    first = colony.spawn(None, energy=1.0, generation=0, niche=niches[0])
    second = colony.spawn(None, energy=1.0, generation=0, niche=niches[1])
    return colony, first, second


def _route_examples(cells, n=40):
    grid = TaskGrid(sorted({f for f, _ in cells}), sorted({d for _, d in cells}))
    rng = np.random.default_rng(0)
    return {cell: [grid.sample(rng, cell=cell, split="train") for _ in range(n)] for cell in cells}


def test_a_cell_goes_to_the_organelle_that_clearly_beats_the_merged_adapter_there():
    colony, first, second = _colony_with_two_organelles()
    cells = [("math", 1)]
    examples = _route_examples(cells)
    host = AnsweringHost(examples[cells[0]], {MERGED_SLOT: 0.2, first.slot: 0.9, second.slot: 0.5})
    assert route_table(host, None, colony, examples, 8) == {("math", 1): first.slot}


def test_a_cell_stays_with_the_merged_adapter_unless_the_edge_clears_z_errors():
    colony, first, second = _colony_with_two_organelles()
    cells = [("math", 1)]
    examples = _route_examples(cells, n=30)
    host = AnsweringHost(examples[cells[0]], {MERGED_SLOT: 0.5, first.slot: 0.6, second.slot: 0.4})
    assert route_table(host, None, colony, examples, 8, z=3.0) == {("math", 1): MERGED_SLOT}


def test_a_cell_falls_back_to_the_bare_host_where_it_beats_the_merged_adapter():
    colony, first, second = _colony_with_two_organelles()
    cells = [("math", 1)]
    examples = _route_examples(cells, n=80)
    # The organelle clearly beats the merged adapter but not the host: the host keeps the cell.
    accuracy = {HOST_SLOT: 0.8, MERGED_SLOT: 0.3, first.slot: 0.8, second.slot: 0.1}
    host = AnsweringHost(examples[cells[0]], accuracy)
    assert route_table(host, None, colony, examples, 8) == {("math", 1): HOST_SLOT}
    # Once an organelle clearly beats the host too, it takes the cell.
    host = AnsweringHost(examples[cells[0]], {**accuracy, second.slot: 1.0})
    assert route_table(host, None, colony, examples, 8) == {("math", 1): second.slot}


def test_only_organelles_whose_niche_holds_the_cell_are_candidates():
    colony, first, second = _colony_with_two_organelles(niches=("logic", "math"))
    cells = [("math", 1), ("logic", 1)]
    examples = _route_examples(cells)
    flat = [ex for batch in examples.values() for ex in batch]
    host = AnsweringHost(flat, {MERGED_SLOT: 0.0, first.slot: 1.0, second.slot: 1.0})
    assert route_table(host, None, colony, examples, 8) == {
        ("math", 1): second.slot,
        ("logic", 1): first.slot,
    }


def test_the_paired_difference_and_its_interval():
    result = paired_difference([1, 1, 0, 1], [0, 1, 0, 0])
    assert result["mean"] == 0.5 and result["n"] == 4
    assert result["ci95"][0] < 0.5 < result["ci95"][1]
    assert np.isclose(result["se"], np.std([1, 0, 0, 1], ddof=1) / 2)


def test_the_holdout_holds_distinct_prompts_of_every_cell():
    grid = TaskGrid(["math", "sorting"], [1, 2])
    examples = holdout_examples(grid, 60, seed=0)
    assert len({ex.prompt for ex in examples}) == len(examples)
    for cell in grid.cells:
        assert 0 < sum((ex.family, ex.difficulty) == cell for ex in examples) <= 60


def test_the_best_organelle_is_the_one_with_the_larger_paired_edge_not_the_higher_score():
    colony, easy_cells, hard_cells = _colony_with_two_organelles()
    assert best_organelle(colony) is None
    for _ in range(6):  # scores 0.9 where the merged adapter scores 1.0
        easy_cells.record(("math", 1), True, treatment=0.9, control=1.0, window=8)
    for _ in range(6):  # scores 0.3 where the merged adapter scores 0.1
        hard_cells.record(("math", 3), False, treatment=0.3, control=0.1, window=8)
    assert easy_cells.mean_edge() < 0 < hard_cells.mean_edge()
    assert best_organelle(colony) is hard_cells


def test_forgetting_the_control_clears_the_edge_and_the_window():
    colony, first, _ = _colony_with_two_organelles()
    for _ in range(6):
        first.record(("math", 1), True, treatment=1.0, control=0.0, window=8)
    first.wins = 3
    assert best_organelle(colony) is first
    first.forget_control()
    assert best_organelle(colony) is None
    assert first.recent == [] and first.wins == 0


def test_a_small_edge_on_every_cell_of_a_niche_routes_when_pooled_and_only_then():
    # +12 points on each of three cells: too few prompts to clear z on any one cell alone, clear
    # on the niche's 150 prompts together.
    colony, first, _ = _colony_with_two_organelles(niches=("math", "logic"))
    cells = [("math", 1), ("math", 2), ("math", 3)]
    examples = _route_examples(cells, n=50)
    flat = [ex for batch in examples.values() for ex in batch]
    host = AnsweringHost(flat, {MERGED_SLOT: 0.4, first.slot: 0.52})
    alone = route_table(host, None, colony, examples, 8, z=1.645, pooled=False)
    pooled = route_table(host, None, colony, examples, 8, z=1.645, pooled=True)
    assert sum(slot == first.slot for slot in alone.values()) < len(cells)
    assert all(
        pooled[c] == (first.slot if _edge(host, first.slot, examples[c]) >= 0 else MERGED_SLOT)
        for c in cells
    )
    assert sum(slot == first.slot for slot in pooled.values()) > sum(
        slot == first.slot for slot in alone.values()
    )


def _edge(host, slot, examples):
    prompts = [ex.prompt for ex in examples]
    mine = host.generate(prompts, 8, None, [slot] * len(prompts))
    merged = host.generate(prompts, 8, None, [MERGED_SLOT] * len(prompts))
    answers = [ex.answer for ex in examples]
    return sum(a == x for a, x in zip(answers, mine, strict=True)) - sum(
        a == x for a, x in zip(answers, merged, strict=True)
    )
