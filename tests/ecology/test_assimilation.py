import numpy as np
import pytest

from evolora.ecology.assimilation import (
    GateDecision,
    energy_stage,
    holdout_stage,
    paired_permutation_pvalue,
    uplift_stage,
)
from evolora.ecology.config import AssimilationTuning


def test_permutation_test_detects_a_consistent_gain_and_not_noise():
    rng = np.random.default_rng(0)
    control = np.zeros(12)
    assert paired_permutation_pvalue(np.ones(12), control, 2000, rng) < 0.01
    noise = rng.normal(size=12)
    p_null = paired_permutation_pvalue(control + noise, control + noise[::-1], 2000, rng)
    assert p_null > 0.05


def test_energy_gate_with_and_without_top_up():
    tuning = AssimilationTuning(
        energy_gate=5.0, energy_topup_roi_bonus=2.0, topup_roi_threshold=1.5
    )
    low_roi = GateDecision(organelle=1, generation=3)
    assert energy_stage(low_roi, energy=4.0, roi=1.0, tuning=tuning) == 4.0
    assert low_roi.reasons and "below gate" in low_roi.reasons[0]
    high_roi = GateDecision(organelle=1, generation=3)
    assert energy_stage(high_roi, energy=4.0, roi=2.0, tuning=tuning) == pytest.approx(5.0)
    assert high_roi.topup == pytest.approx(1.0)
    assert high_roi.reasons == []


def test_uplift_stage_needs_a_full_window_a_large_enough_gain_and_significance():
    tuning = AssimilationTuning(window=6, uplift_threshold=0.2, p_value=0.05, permutations=999)
    rng = np.random.default_rng(0)
    short = GateDecision(organelle=1, generation=1)
    assert not uplift_stage(short, np.ones(3), np.zeros(3), tuning, rng)
    assert "window" in short.reasons[0]

    small = GateDecision(organelle=1, generation=1)
    treatment = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert not uplift_stage(small, treatment, np.zeros(6), tuning, rng)
    assert small.uplift == pytest.approx(1 / 6)
    assert any("uplift" in r for r in small.reasons)

    strong = GateDecision(organelle=1, generation=1)
    assert uplift_stage(strong, np.ones(6), np.zeros(6), tuning, rng)
    assert strong.uplift == pytest.approx(1.0) and strong.p_value < 0.05


def test_holdout_stage_passes_only_a_merge_whose_paired_gain_clears_the_margin():
    tuning = AssimilationTuning(holdout_margin=0.0, probe_z=1.645)
    before = np.array([1.0, 0.0] * 20)
    noisy = GateDecision(organelle=1, generation=1)  # +5 points on 40 prompts: within noise
    assert not holdout_stage(noisy, before, np.where(np.arange(40) < 2, 1.0, before), tuning)
    assert noisy.probe_lower < 0 < noisy.probe_detectable
    better = GateDecision(organelle=1, generation=1)  # +25 points, never worse on a prompt
    assert holdout_stage(better, before, np.where(np.arange(40) % 4 == 1, 1.0, before), tuning)
    assert better.passed and better.reasons == ["passed"]
    assert better.holdout_after - better.holdout_before == pytest.approx(0.25)


def test_a_p_value_just_above_the_threshold_is_not_printed_as_equal_to_it(monkeypatch):
    import evolora.ecology.assimilation as assimilation

    monkeypatch.setattr(assimilation, "paired_permutation_pvalue", lambda *args: 0.5002)
    decision = GateDecision(organelle=1, generation=1)
    tuning = AssimilationTuning(window=2, uplift_threshold=-1.0, p_value=0.5)
    uplift_stage(decision, np.ones(2), np.zeros(2), tuning, np.random.default_rng(0))
    (reason,) = decision.reasons
    above, threshold = reason.split("p-value ")[1].split(" above ")
    assert float(above) > float(threshold)
    assert decision.stopped_at == ["significance"]


def colony_eco(config, energies_and_edges, merges=1):
    """A stand-in ecology holding a real colony whose organelles have these (energy, edge)."""
    from collections import Counter
    from types import SimpleNamespace

    from evolora.ecology.colony import Colony

    colony = Colony(config)
    for energy, edge in energies_and_edges:
        organelle = colony.spawn(None, energy, 0)
        organelle.edge = {"math:1": [edge * 10, edge * edge * 10, 10]}
    return SimpleNamespace(colony=colony, gating=Counter(), merges=merges, config=config)


def test_the_first_merge_takes_the_candidate_whole_and_later_ones_weigh_both_sides():
    from evolora.ecology.config import EcologyConfig
    from evolora.ecology.phases.assimilation import merge_members

    eco = colony_eco(EcologyConfig(), [], merges=0)
    decision = GateDecision(organelle=1, generation=3, control_mean=0.2, treatment_mean=0.6)
    assert merge_members(eco, decision, 4) == ([4], [1.0])
    eco.merges = 1
    members, weights = merge_members(eco, decision, 4)
    assert members == [0, 4] and weights == pytest.approx([0.25, 0.75])


def test_a_merge_offspring_evicts_only_an_organelle_without_an_edge(monkeypatch):
    from evolora.ecology.config import EcologyConfig
    from evolora.ecology.phases import assimilation as phase

    seeded = []
    monkeypatch.setattr(phase, "seed_from_merged", lambda eco, energy: seeded.append(energy))
    config = EcologyConfig(population={"initial": 2, "min": 2, "max": 2})
    # Full colony; the poorest organelle has a positive edge: it stays, the offspring waits.
    eco = colony_eco(config, [(5.0, 0.3), (1.0, 0.2)])
    phase.after_merge(eco, offspring=1)
    assert len(eco.colony.organelles) == 2 and not seeded
    assert eco.gating["assimilation/offspring_skipped"] == 1
    # The poorest has no edge: it makes way for the offspring.
    eco = colony_eco(config, [(5.0, 0.3), (1.0, -0.1)])
    phase.after_merge(eco, offspring=1)
    assert [o.energy for o in eco.colony.organelles] == [5.0] and len(seeded) == 1
