"""Reproduction and culling: organelles that starve too long die (their genes kept when they had
an edge), rich ones split their energy with an offspring, and the colony is kept at its minimum
by seeding new species from the merged adapter into the least-covered niche."""

from __future__ import annotations

import numpy as np
import torch

from evolora.ecology.colony import MERGED_SLOT
from evolora.ecology.diversity import over_cap
from evolora.ecology.organelle import Organelle, cell_key


def reproduce_and_cull(eco) -> tuple[int, int]:
    """Cull the starving, let the rich reproduce (under the species cap), refill to the minimum.
    Returns (born, died)."""
    energy, repro = eco.config.energy, eco.config.reproduction
    died = 0
    for o in list(eco.colony.organelles):
        if o.starving > energy.grace_generations:
            if o.mean_edge() > 0:  # its genes are worth keeping
                eco.snapshot(o.slot, f"organelle-{o.id}", "organelle", o.niche, o.edge)
            eco.colony.remove(o)
            eco.population.reset_member(o.slot)
            died += 1
    born = 0
    rich = sorted(eco.colony.organelles, key=lambda o: -o.energy)
    for parent in rich:
        if parent.energy < repro.energy_threshold:
            break
        species = [o.species for o in eco.colony.organelles]
        if eco.config.diversity.enabled and parent.species in over_cap(
            species, eco.config.diversity.species_share_cap
        ):
            eco.gating["diversity/species_capped"] += 1
            continue
        child = eco.colony.spawn(parent, parent.energy / 2, eco.generation)
        if child is None:
            break
        parent.energy /= 2
        eco.snapshot(parent.slot, f"organelle-{parent.id}", "organelle", parent.niche, parent.edge)
        copy_mutated(eco, parent.slot, child.slot)
        born += 1
    while len(eco.colony.organelles) < eco.config.population.min:
        seed_from_merged(eco, energy.initial)
        born += 1
    return born, died


def seed_from_merged(eco, energy: float) -> Organelle | None:
    """A new organelle of a new species, grown from the colony's merged adapter, in the niche
    `open_niche` picks (None when the colony is full)."""
    organelle = eco.colony.spawn(None, energy, eco.generation, open_niche(eco))
    if organelle is not None:
        copy_mutated(eco, MERGED_SLOT, organelle.slot)
    return organelle


def copy_mutated(eco, src: int, dst: int) -> None:
    """Copy slot `src` into `dst` (learning-rule state follows), then mutate it by
    `reproduction.mutation_sigma` when that is positive."""
    eco.population.clone(src, dst)
    for rule in eco.rules:
        rule.adopt(dst, None if src == MERGED_SLOT else src)
    sigma = eco.config.reproduction.mutation_sigma
    if sigma > 0:
        generator = torch.Generator(device=eco.population.device)
        generator.manual_seed(int(eco.rng.integers(0, 2**62)))
        eco.population.mutate([dst], sigma, generator)


def open_niche(eco) -> str | None:
    """The niche a new organelle takes: among the niches with the fewest organelles, the one
    whose cells the market prices highest (the colony fails them most)."""
    kind = eco.config.specialisation.niche
    if kind == "none":
        return None
    niches = (
        list(dict.fromkeys(f for f, _ in eco.grid.cells))
        if kind == "family"
        else [cell_key(c) for c in eco.grid.cells]
    )
    occupied = {n: sum(o.niche == n for o in eco.colony.organelles) for n in niches}
    fewest = min(occupied.values())
    open_niches = [n for n in niches if occupied[n] == fewest]
    price = {n: np.mean([eco.market.prices[c] for c in eco.niche_cells(n)]) for n in open_niches}
    return max(open_niches, key=lambda n: (price[n], -niches.index(n)))
