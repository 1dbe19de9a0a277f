"""The assimilation gate: is an organelle's advantage real enough to merge it into the colony?

Stages, each logged with its reason: energy (with an optional top-up for high ROI), a full recent
window, uplift of treatment (the candidate) over control (the colony's merged adapter) on the same
prompts against a threshold, a one-sided paired sign-flip permutation test on those pairs, and a
holdout probe on reserved prompts comparing the colony before and after the trial merge, prompt by
prompt (paired), with its power recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

import numpy as np

from evolora.ecology.config import AssimilationTuning

Z_POWER_80 = 0.841621  # standard normal quantile of 0.8


def paired_permutation_pvalue(
    treatment: np.ndarray, control: np.ndarray, permutations: int, rng: np.random.Generator
) -> float:
    """One-sided p-value that treatment beats control, by randomly flipping the paired differences.

    Under the null the sign of each difference is a coin flip; the p-value is the share of
    flipped mean differences at least as large as the observed one (with the +1 correction).
    """
    diff = np.asarray(treatment, dtype=float) - np.asarray(control, dtype=float)
    observed = diff.mean()
    signs = rng.choice([-1.0, 1.0], size=(permutations, len(diff)))
    flipped = (signs * diff).mean(axis=1)
    return float((1 + np.sum(flipped >= observed - 1e-12)) / (permutations + 1))


class Stage(str, Enum):
    """The gate's stages, by which a failed attempt is counted."""

    energy = "energy"
    window = "window"
    uplift = "uplift"
    significance = "significance"
    probe = "probe"


@dataclass
class GateDecision:
    """One assimilation attempt: every number the gate looked at and why it stopped or passed."""

    organelle: int
    generation: int
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    energy: float = 0.0
    topup: float = 0.0
    control_mean: float | None = None
    treatment_mean: float | None = None
    uplift: float | None = None
    p_value: float | None = None
    kept_energy: float | None = None  # share of the merged update's squared norm the merge kept
    holdout_before: float | None = None
    probe_lower: float | None = None  # lower confidence bound of the probe's paired gain
    probe_detectable: float | None = None  # the gain the probe detects with 80 % power
    holdout_after: float | None = None
    eval_before: float | None = None  # holdout accuracy of the colony before a passed merge
    eval_after: float | None = None  # ... and after it (recorded, never used to decide)
    eval_gain: dict | None = None  # paired exact-answer gain after - before, with its 95 % interval

    stopped_at: list[str] = field(default_factory=list)  # the Stage of every failed check

    def stop(self, stage: Stage, reason: str) -> None:
        """Record a failed check: its stage (for counting) and a sentence (for people)."""
        self.stopped_at.append(stage.value)
        self.reasons.append(reason)

    def record(self) -> dict:
        return asdict(self)


def energy_stage(
    decision: GateDecision, energy: float, roi: float, tuning: AssimilationTuning
) -> float:
    """Check the energy gate, minting a top-up for high-ROI organelles; returns the new energy."""
    if (
        energy < tuning.energy_gate
        and tuning.energy_topup_roi_bonus > 0
        and roi >= tuning.topup_roi_threshold
    ):
        decision.topup = min(tuning.energy_topup_roi_bonus, tuning.energy_gate - energy)
        energy += decision.topup
    decision.energy = energy
    if energy < tuning.energy_gate:
        decision.stop(Stage.energy, f"energy {energy:.2f} below gate {tuning.energy_gate:.2f}")
    return energy


def uplift_stage(
    decision: GateDecision,
    treatment: np.ndarray,
    control: np.ndarray,
    tuning: AssimilationTuning,
    rng: np.random.Generator,
) -> bool:
    """Compare the candidate (treatment) with the colony (control) on the same recent prompts."""
    if len(treatment) < tuning.window:
        decision.stop(Stage.window, f"window has {len(treatment)} of {tuning.window} episodes")
        return False
    decision.treatment_mean = float(np.mean(treatment))
    decision.control_mean = float(np.mean(control))
    decision.uplift = decision.treatment_mean - decision.control_mean
    decision.p_value = paired_permutation_pvalue(treatment, control, tuning.permutations, rng)
    ok = True
    if decision.uplift < tuning.uplift_threshold:
        decision.stop(
            Stage.uplift,
            f"uplift {decision.uplift:+.3f} below threshold {tuning.uplift_threshold:+.3f}",
        )
        ok = False
    if decision.p_value > tuning.p_value:
        decision.stop(
            Stage.significance, f"p-value {decision.p_value:.4f} above {tuning.p_value:.4f}"
        )
        ok = False
    return ok


def holdout_stage(
    decision: GateDecision,
    before: np.ndarray,
    after: np.ndarray,
    tuning: AssimilationTuning,
) -> bool:
    """The trial merge must beat the current colony on the reserved probe prompts: the lower
    confidence bound (mean - `probe_z` standard errors) of the paired per-prompt gain must clear
    the margin. Also records the smallest gain this probe detects with 80 % power."""
    diff = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    decision.holdout_before, decision.holdout_after = float(np.mean(before)), float(np.mean(after))
    decision.probe_lower = float(diff.mean()) - tuning.probe_z * se
    decision.probe_detectable = (tuning.probe_z + Z_POWER_80) * se
    if decision.probe_lower <= tuning.holdout_margin:
        decision.stop(
            Stage.probe,
            f"holdout probe {decision.holdout_after:.3f} vs {decision.holdout_before:.3f}: lower "
            f"bound {decision.probe_lower:+.3f} does not beat margin {tuning.holdout_margin:+.3f}",
        )
        return False
    decision.passed = True
    decision.reasons.append("passed")
    return True
