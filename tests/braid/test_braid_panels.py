"""The braid's charts: per-family score and join share, fusion losses, training curves."""

from __future__ import annotations

from evolora.braid.braider import HEADS
from evolora.braid.panels import figures_from_streams


def _decision(update: int, family: str, models: list[str], score: float) -> dict:
    return {"update": update, "family": family, "score": score,
            "decision": {"models": models}}


def test_family_score_and_join_share_are_averaged_per_update():
    decisions = [
        _decision(0, "math", ["a"], 1.0), _decision(0, "math", ["a", "b"], 0.0),
        _decision(0, "logic", ["b"], 1.0), _decision(1, "math", ["a", "b", "c"], 1.0),
    ]
    (score, joins) = figures_from_streams({"decisions": decisions}, {})["families"][1]
    assert score.series == {"logic": ([0], [1.0]), "math": ([0, 1], [0.5, 1.0])}
    assert joins.series == {"logic": ([0], [0.0]), "math": ([0, 1], [0.5, 1.0])}


def test_fusion_losses_are_one_series_per_bank_and_training_one_per_head():
    fusion = [{"strategy": "router", "step": s, "loss": 3.0 - s} for s in range(3)]
    updates = [{"update": u, "reward/mean": 0.1 * u, "score/mean": 0.2 * u, "budget/compute": 0.3,
                **{f"entropy/{h}": 1.0 for h in HEADS}} for u in range(2)]
    figures = figures_from_streams({"fusion": fusion, "updates": updates}, {})
    assert set(figures) == {"fusion", "training"}
    (loss,) = figures["fusion"][1]
    assert loss.series == {"router": ([0, 1, 2], [3.0, 2.0, 1.0])}
    reward, entropy, _ = figures["training"][1]
    assert reward.series["reward/mean"] == ([0, 1], [0.0, 0.1])
    assert set(entropy.series) == set(HEADS)
