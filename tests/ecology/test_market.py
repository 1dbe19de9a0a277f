import math

import numpy as np
import pytest

from evolora.ecology.config import EnvironmentConfig
from evolora.ecology.market import CellMarket, UCBBandit

CELLS = [("math", 1), ("math", 2), ("logic", 1)]


def test_price_rises_on_failure_falls_on_success_and_stays_in_bounds():
    env = EnvironmentConfig(price_initial=1.0, price_step=0.2, price_min=0.5, price_max=2.0)
    market = CellMarket(CELLS, env)
    assert market.update(("math", 1), success_rate=0.0) == pytest.approx(math.exp(0.2))
    assert market.update(("math", 2), success_rate=1.0) == pytest.approx(math.exp(-0.2))
    assert market.update(("logic", 1), success_rate=0.5) == pytest.approx(1.0)
    for _ in range(50):
        market.update(("math", 1), success_rate=0.0)
        market.update(("math", 2), success_rate=1.0)
    assert market.prices[("math", 1)] == 2.0
    assert market.prices[("math", 2)] == 0.5


def test_market_state_round_trips():
    market = CellMarket(CELLS, EnvironmentConfig())
    market.update(("math", 2), 0.0)
    other = CellMarket(CELLS, EnvironmentConfig())
    other.load_state(market.state())
    assert other.prices == market.prices


def test_ucb_serves_unvisited_cells_first_then_the_best_bound():
    bandit = UCBBandit(CELLS, c=0.0)
    rng = np.random.default_rng(0)
    bandit.observe(("math", 1), 0.9, n=10)
    assert set(bandit.select(2, rng)) == {("math", 2), ("logic", 1)}
    bandit.observe(("math", 2), 0.1, n=10)
    bandit.observe(("logic", 1), 0.5, n=10)
    assert bandit.select(1, rng) == [("math", 1)]


def test_ucb_exploration_bonus_favours_rarely_served_cells():
    bandit = UCBBandit(CELLS, c=1.0)
    bandit.observe(("math", 1), 0.6, n=1000)
    bandit.observe(("math", 2), 0.5, n=2)
    bandit.observe(("logic", 1), 0.5, n=1000)
    assert bandit.select(1, np.random.default_rng(0)) == [("math", 2)]
