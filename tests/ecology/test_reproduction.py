"""Where offspring settle (`specialisation.offspring`): a family specialist's offspring narrows to
its family's most failed cell, an empty niche is colonised from the gene pool's best gene."""

from __future__ import annotations

import torch
from ecology_helpers import small_config

from evolora.ecology.genes import gene_from_slot
from evolora.ecology.loop import Ecology
from evolora.ecology.phases.reproduction import colonise, place_offspring, reproduce_and_cull
from evolora.telemetry.rundir import RunDir


def _ecology(tiny_host, tmp_path, **overrides) -> Ecology:
    config = small_config(population={"initial": 2, "min": 2, "max": 5}, **overrides)
    return Ecology.start(config, tiny_host, RunDir.create(tmp_path, config, name="ecology"))


def test_an_offspring_of_a_covered_family_narrows_to_its_most_failed_cell(tiny_host, tmp_path):
    ecology = _ecology(
        tiny_host,
        tmp_path,
        diversity={"species_share_cap": 1.0},
        reproduction={"mutation_sigma": 0.0},
    )
    try:
        parent = next(o for o in ecology.colony.organelles if o.niche == "math")
        ecology.market.prices[("math", 2)] = 3.0  # the colony fails math:2 most
        for name in ecology.population.layer_names:
            ecology.population.B[name][parent.slot] = torch.randn_like(
                ecology.population.B[name][parent.slot]
            )
        parent.energy = 100.0
        born, _ = reproduce_and_cull(ecology)
        (child,) = [o for o in ecology.colony.organelles if o.parent == parent.id]
        assert born >= 1 and child.niche == "math:2"
        name = ecology.population.layer_names[0]
        assert torch.equal(
            ecology.population.delta(child.slot, name), ecology.population.delta(parent.slot, name)
        )
        # math:2 is now held: the next math offspring takes the next most failed cell.
        assert place_offspring(ecology, parent)[0] == "math:1"
    finally:
        ecology.close()


def test_an_empty_niche_is_colonised_from_its_best_gene(tiny_host, tmp_path):
    ecology = _ecology(tiny_host, tmp_path)
    try:
        logic = next(o for o in ecology.colony.organelles if o.niche == "logic")
        for name in ecology.population.layer_names:
            ecology.population.B[name][logic.slot] = torch.randn_like(
                ecology.population.B[name][logic.slot]
            )
        gene = gene_from_slot(ecology.population, logic.slot, 2, "logic-1", "organelle", 1, "logic")
        gene.scores = {"logic:1": 0.25}
        ecology.genes.add(gene)
        ecology.colony.remove(logic)
        parent = ecology.colony.organelles[0]
        assert place_offspring(ecology, parent) == ("logic", 0)
        settler = colonise(ecology, 4.0)
        assert settler.niche == "logic" and settler.parent is None
        for name in ecology.population.layer_names:
            a, b = gene.factors[name]
            assert torch.allclose(ecology.population.delta(settler.slot, name), b @ a, atol=1e-6)
    finally:
        ecology.close()


def test_offspring_keep_their_parents_niche_when_asked(tiny_host, tmp_path):
    ecology = _ecology(tiny_host, tmp_path, specialisation={"offspring": "parent"})
    try:
        parent = ecology.colony.organelles[0]
        assert place_offspring(ecology, parent) == (parent.niche, None)
    finally:
        ecology.close()
