import numpy as np
import pytest

from evolora.ecology.diversity import (
    effective_population,
    gini,
    over_cap,
    redistribute,
    species_shares,
)


def test_gini_of_equal_and_concentrated_energy():
    assert gini(np.array([2.0, 2.0, 2.0, 2.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 8.0])) == pytest.approx(0.75)
    assert gini(np.array([1.0, 3.0])) == pytest.approx(0.25)


def test_redistribution_conserves_energy_and_lowers_gini():
    energies = np.array([10.0, 1.0, 1.0, 0.0])
    after = redistribute(energies, fraction=0.5)
    assert after.sum() == pytest.approx(energies.sum())
    assert gini(after) < gini(energies)
    assert after[0] == pytest.approx(10.0 - 0.5 * (10.0 - 3.0))
    assert (after[1:] <= 3.0 + 1e-9).all()


def test_redistribution_gives_only_to_eligible_organelles():
    energies = np.array([10.0, 1.0, 1.0, 0.0])
    after = redistribute(energies, 0.5, eligible=np.array([True, True, False, False]))
    assert after.sum() == pytest.approx(energies.sum())
    assert after[1] > 1.0 and after[0] < 10.0
    assert after[2:].tolist() == [1.0, 0.0]  # poor but not eligible: nothing given
    assert redistribute(energies, 0.5, np.zeros(4, dtype=bool)).tolist() == energies.tolist()


def test_redistribution_of_equal_energy_changes_nothing():
    assert redistribute(np.array([2.0, 2.0]), 0.5).tolist() == [2.0, 2.0]


def test_effective_population_is_n_when_equal_and_one_when_monopolised():
    assert effective_population(np.ones(5)) == pytest.approx(5.0)
    assert effective_population(np.array([0.0, 0.0, 3.0])) == pytest.approx(1.0)


def test_species_share_cap_blocks_the_dominant_lineage_only():
    species = [1, 1, 1, 2]
    assert species_shares(species) == {1: 0.75, 2: 0.25}
    assert over_cap(species, cap=0.6) == {1}
    assert over_cap([3, 3], cap=0.5) == set()
