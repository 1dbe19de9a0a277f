"""The flat summary of one generation (gen_summaries.jsonl and the live line of `evolora run`)."""

from __future__ import annotations

import numpy as np

from evolora.ecology.diversity import effective_population, gini, species_shares
from evolora.ecology.organelle import cell_key


def generation_summary(eco, active, episodes, learned, born, died, decision, evaluated) -> dict:
    """Metrics of the generation just run, under the prefixes population/, energy/, roi/,
    reward/, learning/, market/, assimilation/ and accuracy/ (when it was evaluated)."""
    organelles = eco.colony.organelles
    energies = eco.colony.energies()
    rois = [e["roi"] for e in episodes]
    summary = {
        "generation": eco.generation,
        "attempt": eco.attempt,
        "population/size": len(organelles),
        "population/active": len(active),
        "population/born": born,
        "population/died": died,
        "population/effective": effective_population(energies),
        "population/species_shares": {
            str(k): v for k, v in species_shares([o.species for o in organelles]).items()
        },
        "energy/mean": float(energies.mean()) if len(energies) else 0.0,
        "energy/total": float(energies.sum()),
        "energy/gini": gini(energies),
        "roi/mean": float(np.mean(rois)) if rois else 0.0,
        "roi/median": float(np.median(rois)) if rois else 0.0,
        "roi/std": float(np.std(rois)) if rois else 0.0,
        "reward/treatment": float(np.mean([e["reward"] for e in episodes])) if episodes else 0.0,
        "reward/control": float(np.mean([e["control_reward"] for e in episodes]))
        if episodes
        else 0.0,
        "learning/fitness": float(np.mean(learned)) if learned else 0.0,
        "market/prices": {cell_key(c): p for c, p in eco.market.prices.items()},
        "assimilation/merges": eco.merges,
        "assimilation/gating": dict(eco.gating),
        "assimilation/last": decision.record() if decision else None,
    }
    if evaluated:
        for variant in ("host", "best", "merged", "routed"):
            summary[f"accuracy/{variant}"] = evaluated[variant]["overall"]
    return summary
