"""The benchmark's paired comparison (benchmarks/economy_paired.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from economy_paired import paired_summary


def test_paired_summary_matches_a_hand_computed_t_interval():
    # diffs -0.1, 0.0, +0.1: mean 0, std 0.1, t(0.975, 2) = 4.3027
    out = paired_summary([0.9, 1.0, 1.1], [1.0, 1.0, 1.0])
    assert out["diffs"] == pytest.approx([-0.1, 0.0, 0.1])
    assert out["mean"] == pytest.approx(0.0)
    assert out["std"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / 3**0.5
    assert out["interval"] == pytest.approx([-half, half], rel=1e-5)
    assert (out["wins"], out["ties"], out["losses"]) == (1, 1, 1)


def test_paired_summary_interval_excludes_zero_for_a_consistent_gain():
    out = paired_summary([0.40, 0.41, 0.39, 0.40], [0.45, 0.45, 0.44, 0.46])
    assert out["interval"][1] < 0
    assert out["wins"] == 4


def test_paired_summary_rejects_unpaired_lists():
    with pytest.raises(ValueError, match="same length"):
        paired_summary([0.1, 0.2], [0.1])
