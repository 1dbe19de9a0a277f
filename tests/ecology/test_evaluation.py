from evolora.ecology.colony import MERGED_SLOT, Colony
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import best_organelle, routed_slot


def _colony_with_two_organelles():
    colony = Colony(EcologyConfig())
    first = colony.spawn(None, energy=1.0, generation=0)
    second = colony.spawn(None, energy=1.0, generation=0)
    return colony, first, second


def test_a_cell_goes_to_the_organelle_that_beat_the_control_there():
    colony, first, second = _colony_with_two_organelles()
    for k in range(6):
        first.record(("math", 1), True, treatment=1.0, control=0.0, window=8)
        second.record(("math", 1), True, treatment=1.0, control=0.5 * (k % 2), window=8)
    assert routed_slot(colony, ("math", 1)) == first.slot


def test_a_noisy_edge_is_not_enough_to_take_a_cell():
    colony, first, _ = _colony_with_two_organelles()
    for k in range(8):  # mean edge +0.25, but as often behind as ahead
        first.record(
            ("logic", 1), True, treatment=float(k % 2), control=0.75 * (1 - k % 2), window=8
        )
    assert first.edge_bound(("logic", 1))[0] < 0
    assert routed_slot(colony, ("logic", 1)) == MERGED_SLOT


def test_the_confidence_z_sets_how_clear_an_edge_must_be_to_take_a_cell():
    colony, first, _ = _colony_with_two_organelles()
    for k in range(8):  # mean edge 0.5, standard error about 0.19
        first.record(("math", 1), True, treatment=1.0, control=float(k % 2), window=8)
    assert first.edge_bound(("math", 1), z=1.0)[0] > 0 > first.edge_bound(("math", 1), z=3.0)[0]
    assert routed_slot(colony, ("math", 1), z=1.0) == first.slot
    assert routed_slot(colony, ("math", 1), z=3.0) == MERGED_SLOT


def test_a_cell_stays_with_the_merged_adapter_without_paired_evidence():
    colony, first, second = _colony_with_two_organelles()
    for _ in range(4):
        first.record(("math", 1), False, treatment=0.2, control=0.5, window=8)
    for _ in range(5):  # too few episodes to count
        second.record(("math", 1), True, treatment=1.0, control=0.0, window=8)
    assert routed_slot(colony, ("math", 1)) == MERGED_SLOT
    assert routed_slot(colony, ("logic", 1)) == MERGED_SLOT


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
    assert routed_slot(colony, ("math", 1)) == MERGED_SLOT
    assert first.recent == [] and first.wins == 0
