"""The diversity guard: when energy concentrates (Gini above the cap), part of it is shared out."""

from __future__ import annotations

import numpy as np

from evolora.ecology.diversity import gini, redistribute


def guard_diversity(eco) -> None:
    """Redistribute `redistribute_fraction` of the colony's energy when its Gini coefficient
    exceeds `diversity.energy_gini_cap` (counted in the gating counters). Only organelles that
    have beaten the merged adapter on their episodes receive: the guard keeps useful lineages
    alive, not ones the culling would rightly remove."""
    guard = eco.config.diversity
    organelles = eco.colony.organelles
    if not guard.enabled or len(organelles) < 2:
        return
    energies = eco.colony.energies()
    if gini(energies) <= guard.energy_gini_cap:
        return
    useful = np.array([o.mean_edge() > 0 for o in organelles])
    shared = redistribute(energies, guard.redistribute_fraction, useful)
    if np.array_equal(shared, energies):
        eco.gating["diversity/no_recipient"] += 1
        return
    eco.gating["diversity/redistributions"] += 1
    for o, e in zip(organelles, shared, strict=True):
        o.energy = float(e)
