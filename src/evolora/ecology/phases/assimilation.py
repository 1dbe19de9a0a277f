"""Assimilation: the strongest repeat winner is tested (energy, paired uplift, holdout probe) and,
when it passes every stage, merged into the colony's adapter, which then seeds offspring."""

from __future__ import annotations

import numpy as np

from evolora.ecology import assimilation as gate
from evolora.ecology.colony import MERGED_SLOT
from evolora.ecology.evaluation import exact_answers, paired_difference, slot_scores
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
    if decision.topup > 0:
        eco.gating["assimilation/topups"] += 1
    pairs = np.array(candidate.recent)
    passed_uplift = gate.uplift_stage(decision, pairs[:, 0], pairs[:, 1], tuning, eco.rng)
    if not decision.reasons and passed_uplift:
        trial = eco.colony.scratch[-1]
        members, weights = merge_members(eco, decision, candidate.slot)
        merged = merge(
            eco.population, members, weights, method=tuning.merge_method, rank=eco.config.lora.rank
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
            before_right, after_right = (exact_answers(s) for s in held)
            decision.eval_before = float(np.mean(before_right))
            decision.eval_after = float(np.mean(after_right))
            decision.eval_gain = paired_difference(after_right, before_right)
            eco.population.clone(trial, MERGED_SLOT)
            eco.merges += 1
            eco.snapshot(MERGED_SLOT, f"merge-{eco.merges}", "merge", None, {})
            after_merge(eco, tuning.offspring)
    candidate.wins = 0
    log_decision(eco, decision)
    return decision


def merge_members(eco, decision: gate.GateDecision, candidate: int) -> tuple[list, list]:
    """The slots a merge combines and their weights (normalised to sum to one): the colony's
    adapter and the candidate, weighted by their recent scores; before the first merge the
    colony's adapter is empty, and the candidate is taken whole (a weight on an empty adapter
    would only shrink the candidate's update)."""
    if eco.merges == 0:
        return [candidate], [1.0]
    weights = np.array([decision.control_mean, decision.treatment_mean]).clip(
        eco.config.assimilation_tuning.weight_floor
    )
    return [MERGED_SLOT, candidate], (weights / weights.sum()).tolist()


def after_merge(eco, offspring: int) -> None:
    """Seed offspring of the new merged adapter into free slots; when the colony is full an
    offspring replaces the poorest organelle only if that one showed no edge (a merge must not
    evict a specialist that earns its place). Then every window starts afresh: old control
    scores describe the previous merged adapter."""
    for _ in range(offspring):
        if not eco.colony.free_slots():
            poorest = min(eco.colony.organelles, key=lambda o: o.energy)
            if poorest.mean_edge() > 0:
                eco.gating["assimilation/offspring_skipped"] += 1
                continue
            eco.colony.remove(poorest)
        seed_from_merged(eco, eco.config.energy.initial)
    for o in eco.colony.organelles:
        o.forget_control()


def probe_scores(eco, slot: int) -> np.ndarray:
    """Whether a slot answers each reserved probe prompt exactly (1.0) or not (0.0): the probe
    judges the accuracy the evaluation counts, not partial credit, which a merge can raise while
    exact answers fall. The merged adapter's are kept until it changes (the probe is then
    generated for the trial merge alone)."""
    if slot == MERGED_SLOT and eco.merged_probe[0] == eco.merges:
        return eco.merged_probe[1]
    tokens = eco.config.grid.max_new_tokens
    (scores,) = slot_scores(eco.host, eco.population, [slot], eco.probe, tokens)
    scores = np.array(exact_answers(scores))
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
