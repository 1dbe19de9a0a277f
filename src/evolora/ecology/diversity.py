"""The diversity guard: energy Gini cap with redistribution, species share cap, effective size."""

from __future__ import annotations

from collections import Counter

import numpy as np


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = equal, -> 1 = one holds everything)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * ranks - n - 1) @ x / (n * x.sum()))


def redistribute(
    energies: np.ndarray, fraction: float, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Move `fraction` of every above-mean excess into shares for the below-mean organelles
    that are `eligible` (all by default).

    Total energy is conserved and the Gini coefficient never rises.
    """
    e = np.asarray(energies, dtype=float)
    mean = e.mean()
    excess = np.clip(e - mean, 0, None) * fraction
    poor = e < mean
    if eligible is not None:
        poor &= np.asarray(eligible, dtype=bool)
    if not poor.any() or excess.sum() == 0:
        return e.copy()
    deficit = np.where(poor, mean - e, 0.0)
    # Fill the poorest gaps in proportion to their distance from the mean, never past it.
    gift = np.minimum(deficit, excess.sum() * deficit / deficit.sum())
    taken = excess * (gift.sum() / excess.sum())
    return e - taken + gift


def effective_population(energies: np.ndarray) -> float:
    """Inverse Simpson index of the energy shares: n when equal, 1 when one organelle has it all."""
    e = np.asarray(energies, dtype=float)
    total = e.sum()
    if total <= 0:
        return 0.0
    share = e / total
    return float(1.0 / (share @ share))


def species_shares(species: list[int]) -> dict[int, float]:
    """Fraction of the living population that belongs to each species (lineage)."""
    counts = Counter(species)
    n = len(species)
    return {s: c / n for s, c in sorted(counts.items())} if n else {}


def over_cap(species: list[int], cap: float) -> set[int]:
    """Species whose share would exceed the cap with one more member, so they may not reproduce.

    A lone surviving species is never capped: there is no diversity left to protect.
    """
    counts = Counter(species)
    n = len(species)
    if len(counts) < 2:
        return set()
    return {s for s, c in counts.items() if (c + 1) / (n + 1) > cap}
