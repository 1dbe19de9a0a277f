"""Fixed-target measures (success count, ERT) on hand-made runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evolora.swarm.targets import (
    ert_ratio,
    ert_ratio_bootstrap,
    first_hit,
    fixed_target,
    interval,
)

NO = -math.inf  # a trial whose value does not count (e.g. a reduced budget)


def test_first_hit_counts_trials_and_cost_up_to_the_first_value_at_the_target():
    run = [(NO, 1.0), (0.5, 2.0), (0.9, 3.0), (1.0, 4.0)]
    hit = first_hit(run, 0.9)
    assert (hit.trials, hit.cost, hit.total_trials, hit.total_cost) == (3, 6.0, 4, 10.0)
    assert hit.reached
    miss = first_hit(run, 2.0)
    assert not miss.reached and math.isinf(miss.trials) and math.isinf(miss.cost)
    assert miss.total_cost == 10.0


def test_ert_charges_misses_their_whole_cost_and_divides_by_the_successes():
    runs = [
        [(0.0, 1.0), (1.0, 1.0)],  # reached at trial 2, cost 2
        [(0.0, 5.0), (0.0, 5.0)],  # missed: 2 trials, cost 10
        [(1.0, 3.0)],  # reached at trial 1, cost 3
    ]
    summary = fixed_target(runs, 1.0)
    assert (summary.runs, summary.successes) == (3, 2)
    assert summary.success_rate == pytest.approx(2 / 3)
    assert summary.ert_trials == pytest.approx((2 + 2 + 1) / 2)
    assert summary.ert_cost == pytest.approx((2 + 10 + 3) / 2)
    assert summary.record()["success_rate"] == pytest.approx(2 / 3)


def test_failing_cheaply_does_not_beat_always_reaching_the_target():
    steady = [[(1.0, 10.0)]] * 3  # every run reaches the target for 10
    cheap = [[(1.0, 10.0)], [(0.0, 1.0)], [(0.0, 1.0)]]  # two of three give up after 1
    # A median charging a miss its whole cost ranks the cheap failures first (1 against 10).
    assert sorted(c for run in cheap for _, c in run)[1] < 10.0
    assert fixed_target(steady, 1.0).ert_cost == 10.0
    assert fixed_target(cheap, 1.0).ert_cost == 12.0  # (10 + 1 + 1) / 1 success


def test_no_success_gives_an_infinite_ert_and_the_ratio_says_who_reached_it():
    never = fixed_target([[(0.0, 1.0)]], 1.0)
    always = fixed_target([[(1.0, 4.0)]], 1.0)
    assert never.successes == 0 and math.isinf(never.ert_cost) and math.isinf(never.ert_trials)
    assert ert_ratio(always.ert_cost, never.ert_cost) == 0.0
    assert math.isinf(ert_ratio(never.ert_cost, always.ert_cost))
    assert math.isnan(ert_ratio(never.ert_cost, never.ert_cost))
    assert ert_ratio(2.0, 8.0) == 0.25


def test_the_bootstrap_interval_is_a_point_for_identical_runs_and_spans_uncertain_ones():
    rng = np.random.default_rng(0)
    steady = [first_hit([(1.0, 2.0)], 1.0)] * 4
    assert interval(ert_ratio_bootstrap(steady, steady, rng)) == (1.0, 1.0)
    lucky = [first_hit([(1.0, 1.0)], 1.0)] + [first_hit([(0.0, 1.0)], 1.0)] * 3
    ratios = ert_ratio_bootstrap(lucky, steady, rng)
    # One success in four: resamples without it never reach the target (inf); those holding it
    # twice or more spend at most the steady cost per success.
    low, high = interval(ratios)
    assert low <= 1.0 and math.isinf(high)
    assert 0.2 < np.mean(np.isinf(ratios)) < 0.4  # (3/4)^4 = 0.32 of resamples lack it
    never = [first_hit([(0.0, 1.0)], 1.0)] * 2
    assert np.isnan(ert_ratio_bootstrap(never, never, rng)).all()
    assert all(map(math.isnan, interval(ert_ratio_bootstrap(never, never, rng))))
