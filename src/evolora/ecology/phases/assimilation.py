"""Assimilation: the strongest repeat winner is tested (energy, paired uplift, holdout probe) and,
when it passes every stage, merged into the colony's adapter, which then seeds offspring."""

from __future__ import annotations

import numpy as np

from evolora.ecology import assimilation as gate
from evolora.ecology.colony import MERGED_SLOT
from evolora.ecology.evaluation import slot_scores, summarize
from evolora.ecology.phases.reproduction import seed_from_merged
from evolora.lora import merge


def try_assimilation(eco) -> gate.GateDecision | None:
    """Test the strongest repeat winner; merge it into the colony's adapter if it passes."""
    tuning = eco.config.assimilation_tuning
    if not tuning.enabled:
        return None
    winners = [o for o in eco.colony.organelles if o.wins >= tuning.min_wins]
    if not winners:
        return None
    candidate = max(winners, key=lambda o: np.mean([t - c for t, c in o.recent]))
    decision = gate.GateDecision(organelle=candidate.id, generation=eco.generation)
    eco.gating["assimilation/attempts"] += 1
    candidate.energy = gate.energy_stage(decision, candidate.energy, candidate.roi, tuning)
    pairs = np.array(candidate.recent)
    passed_uplift = gate.uplift_stage(decision, pairs[:, 0], pairs[:, 1], tuning, eco.rng)
    if not decision.reasons and passed_uplift:
        trial = eco.colony.scratch[-1]
        weights = np.array([decision.control_mean, decision.treatment_mean]).clip(
            tuning.weight_floor
        )
        merged = merge(
            eco.population,
            [MERGED_SLOT, candidate.slot],
            (weights / weights.sum()).tolist(),
            method=tuning.merge_method,
            rank=eco.config.lora.rank,
        )
        eco.population.set_member(trial, merged.tensors)
        decision.kept_energy = min(merged.kept_energy.values())
        before, after = probe_scores(eco, MERGED_SLOT), probe_scores(eco, trial)
        if gate.holdout_stage(decision, before, after, tuning):
            # Telemetry only (never a gate): the merge's effect on the evaluation holdout.
            held = slot_scores(
                eco.host,
                eco.population,
                [MERGED_SLOT, trial],
                eco.holdout,
                eco.config.grid.max_new_tokens,
            )
            decision.eval_before, decision.eval_after = (
                summarize(s, eco.holdout)["overall"] for s in held
            )
            eco.population.clone(trial, MERGED_SLOT)
            eco.merges += 1
            eco.snapshot(MERGED_SLOT, f"merge-{eco.merges}", "merge", None, {})
            after_merge(eco, tuning.offspring)
    candidate.wins = 0
    log_decision(eco, decision)
    return decision


def after_merge(eco, offspring: int) -> None:
    """Old control scores describe the previous merged adapter: start every window afresh,
    then seed offspring of the new merged adapter (replacing the poorest when full)."""
    for o in eco.colony.organelles:
        o.forget_control()
    for _ in range(offspring):
        if not eco.colony.free_slots():
            poorest = min(eco.colony.organelles, key=lambda o: o.energy)
            eco.colony.remove(poorest)
        seed_from_merged(eco, eco.config.energy.initial)


def probe_scores(eco, slot: int) -> np.ndarray:
    """A slot's score on each reserved probe prompt; the merged adapter's are kept until it
    changes (the probe is then generated for the trial merge alone)."""
    if slot == MERGED_SLOT and eco.merged_probe[0] == eco.merges:
        return eco.merged_probe[1]
    tokens = eco.config.grid.max_new_tokens
    (scores,) = slot_scores(eco.host, eco.population, [slot], eco.probe, tokens)
    scores = np.array(scores)
    if slot == MERGED_SLOT:
        eco.merged_probe = (eco.merges, scores)
    return scores


def log_decision(eco, decision: gate.GateDecision) -> None:
    """Count the decision's outcome and every stage that stopped it; keep a bounded list of
    recent decisions and write it to the `assimilation` stream."""
    outcome = "passed" if decision.passed else "failed"
    eco.gating[f"assimilation/{outcome}"] += 1
    for stage in decision.stopped_at:
        eco.gating[f"gate/{stage}"] += 1
    record = {"attempt": eco.attempt, **decision.record()}
    limit = eco.config.assimilation_tuning.gating_snapshot_limit
    eco.snapshots = [*eco.snapshots, record][-limit:]
    eco.write("assimilation", record)
