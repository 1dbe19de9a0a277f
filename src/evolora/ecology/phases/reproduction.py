"""Reproduction and culling: organelles that starve too long die (their genes kept when they had
an edge), rich ones split their energy with an offspring, and the colony is kept at its minimum
by seeding new species from the merged adapter into the least-covered niche."""

from __future__ import annotations

import numpy as np
import torch

from evolora.ecology.colony import MERGED_SLOT
from evolora.ecology.diversity import over_cap
from evolora.ecology.genes import layer_groups
from evolora.ecology.organelle import Organelle, cell_key, niche_family


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
        if not eco.colony.free_slots():
            break
        # Snapshot first: adding the parent's gene may reorder the pool the child grows from.
        eco.snapshot(parent.slot, f"organelle-{parent.id}", "organelle", parent.niche, parent.edge)
        niche, gene = place_offspring(eco, parent)
        child = eco.colony.spawn(parent, parent.energy / 2, eco.generation, niche)
        parent.energy /= 2
        if gene is not None:
            grow_from_gene(eco, gene, child.slot)
        else:
            copy_mutated(
                eco,
                parent.slot if niche_within(child.niche, parent.niche) else MERGED_SLOT,
                child.slot,
            )
        born += 1
    while len(eco.colony.organelles) < eco.config.population.min:
        colonise(eco, energy.initial)
        born += 1
    return born, died


def colonise(eco, energy: float) -> Organelle | None:
    """A new species in the least-covered niche (`open_niche`), grown from the gene pool's best
    gene for that niche when `specialisation.offspring` is adaptive, else from the merged
    adapter."""
    if eco.config.specialisation.offspring == "parent":
        return seed_from_merged(eco, energy)
    niche = open_niche(eco)
    gene = best_gene(eco, niche) if niche is not None else None
    if gene is None:
        return seed_from_merged(eco, energy)
    organelle = eco.colony.spawn(None, energy, eco.generation, niche)
    if organelle is not None:
        grow_from_gene(eco, gene, organelle.slot)
    return organelle


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
    if eco.config.specialisation.niche == "none":
        return None
    niches = top_niches(eco)
    occupied = {n: occupancy(eco, n) for n in niches}
    fewest = min(occupied.values())
    return most_failed(eco, [n for n in niches if occupied[n] == fewest])


def place_offspring(eco, parent: Organelle) -> tuple[str | None, int | None]:
    """An offspring's niche and, when it should grow from the gene pool, the gene's index
    (`specialisation.offspring`, see its description in config.py)."""
    spec = eco.config.specialisation
    if spec.niche == "none" or spec.offspring == "parent":
        return parent.niche, None
    empty = [n for n in top_niches(eco) if occupancy(eco, n) == 0]
    if empty:
        niche = most_failed(eco, empty)
        return niche, best_gene(eco, niche)
    if spec.niche == "family":
        held = {o.niche for o in eco.colony.organelles}
        cells = [cell_key(c) for c in eco.niche_cells(parent.niche) if cell_key(c) not in held]
        if cells:
            return most_failed(eco, cells), None
    return parent.niche, None


def grow_from_gene(eco, gene: int, dst: int) -> None:
    """Write gene `gene` of the pool into slot `dst` exactly; learning state starts afresh."""
    groups = layer_groups(eco.population.layer_names)
    eco.genes.compose(eco.population, dst, [gene], torch.ones(1, max(groups) + 1), groups)
    for rule in eco.rules:
        rule.adopt(dst, None)


def best_gene(eco, niche: str) -> int | None:
    """The pool index of the gene grown in `niche` (or one of its cells) with the largest mean
    paired edge, if any gene there has a positive one."""
    scored = [
        (float(np.mean(list(g.scores.values()))), i)
        for i, g in enumerate(eco.genes.genes)
        if g.niche is not None and niche_within(g.niche, niche) and g.scores
    ]
    best = max(scored, default=(0.0, None))
    return best[1] if best[0] > 0 else None


def top_niches(eco) -> list[str]:
    """The niches the colony covers: every family, or every cell (`specialisation.niche`)."""
    if eco.config.specialisation.niche == "family":
        return list(dict.fromkeys(f for f, _ in eco.grid.cells))
    return [cell_key(c) for c in eco.grid.cells]


def occupancy(eco, niche: str) -> int:
    """Organelles whose niche lies within `niche` (a family holds its cells' specialists)."""
    return sum(niche_within(o.niche, niche) for o in eco.colony.organelles)


def niche_within(inner: str | None, outer: str | None) -> bool:
    """Whether niche `inner` lies within `outer` ('math:2' lies within 'math'; None holds all)."""
    if outer is None or inner == outer:
        return True
    return niche_family(inner) == outer  # a cell lies within its family


def most_failed(eco, niches: list[str]) -> str:
    """The niche whose cells the market prices highest (ties: the first)."""
    price = {n: np.mean([eco.market.prices[c] for c in eco.niche_cells(n)]) for n in niches}
    return max(niches, key=lambda n: (price[n], -niches.index(n)))
