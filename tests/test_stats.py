"""Paired comparisons (evolora.stats)."""

import math

import pytest

from evolora.stats import paired_difference, t_coverage, t_quantile


def test_the_t_interval_matches_a_hand_computed_case():
    # diffs -0.1, 0.0, +0.1: mean 0, std 0.1, se 0.1 / sqrt 3; t(0.975, 2) = 4.302653
    out = paired_difference([0.9, 1.0, 1.1], [1.0, 1.0, 1.0], interval="t")
    assert out["mean"] == pytest.approx(0.0)
    assert out["std"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert out["ci95"] == pytest.approx([-half, half], rel=1e-6)
    assert out["n"] == 3 and out["interval"] == "t"


def test_the_normal_interval_matches_a_hand_computed_case():
    # diffs 1, 0, 0, 1: mean 0.5, std sqrt(1/3), se sqrt(1/3) / 2
    out = paired_difference([1, 1, 0, 1], [0, 1, 0, 0])
    se = math.sqrt(1 / 3) / 2
    assert out["mean"] == 0.5 and out["se"] == pytest.approx(se)
    assert out["ci95"] == pytest.approx([0.5 - 1.959964 * se, 0.5 + 1.959964 * se])


def test_the_t_interval_is_wider_than_the_normal_one_and_closes_in_on_it():
    a, b = [0.40, 0.41, 0.39, 0.40], [0.45, 0.45, 0.44, 0.46]
    normal, t = paired_difference(a, b), paired_difference(a, b, interval="t")
    assert t["ci95"][0] < normal["ci95"][0] and t["ci95"][1] > normal["ci95"][1]
    assert t["ci95"][1] < 0  # a consistent gain stays significant
    assert t_quantile(0.95, 1000) == pytest.approx(1.962339, rel=1e-6)  # near the normal 1.96


@pytest.mark.parametrize(
    ("df", "quantile"), [(1, 12.706205), (2, 4.302653), (3, 3.182446), (9, 2.262157)]
)
def test_t_quantiles_match_the_tables(df, quantile):
    assert t_quantile(0.95, df) == pytest.approx(quantile, rel=1e-6)
    assert t_coverage(quantile, df) == pytest.approx(0.95, abs=1e-7)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same length"):
        paired_difference([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="interval must be one of"):
        paired_difference([0.1, 0.2], [0.1, 0.3], interval="bootstrap")
