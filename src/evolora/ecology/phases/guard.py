"""The diversity guard: when energy concentrates (Gini above the cap), part of it is shared out."""

from __future__ import annotations

from evolora.ecology.diversity import gini, redistribute


def guard_diversity(eco) -> None:
    """Redistribute `redistribute_fraction` of the colony's energy when its Gini coefficient
    exceeds `diversity.energy_gini_cap` (counted in the gating counters)."""
    guard = eco.config.diversity
    if not guard.enabled or len(eco.colony.organelles) < 2:
        return
    energies = eco.colony.energies()
    if gini(energies) > guard.energy_gini_cap:
        eco.gating["diversity/redistributions"] += 1
        for o, e in zip(
            eco.colony.organelles, redistribute(energies, guard.redistribute_fraction), strict=True
        ):
            o.energy = float(e)
