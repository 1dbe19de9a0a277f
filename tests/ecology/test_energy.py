import pytest

from evolora.ecology.config import EnergyConfig, EnvironmentConfig
from evolora.ecology.energy import Compute, apply, compute_cost, pay_ticket, roi, settle_episode


def test_compute_cost_adds_flops_latency_and_parameters_times_scale():
    energy = EnergyConfig(cost_scale=2.0, flop_weight=1.0, latency_weight=0.5, param_weight=0.1)
    cost = compute_cost(Compute(flops=3e9, seconds=2.0, adapter_params=4_000_000), energy)
    assert cost == pytest.approx(2.0 * (3.0 + 1.0 + 0.4))


def test_success_earns_price_times_reward_plus_bonus_and_pays_plain_cost():
    env = EnvironmentConfig(success_reward_bonus=0.5, failure_cost_multiplier=3.0)
    books = settle_episode(price=2.0, reward=1.0, success=True, cost=0.25, env=env)
    assert books.revenue == pytest.approx(2.5)
    assert books.cost == pytest.approx(0.25)
    assert books.net == pytest.approx(2.25)
    assert books.roi == pytest.approx(10.0)


def test_failure_earns_partial_credit_and_pays_the_multiplied_cost():
    env = EnvironmentConfig(success_reward_bonus=0.5, failure_cost_multiplier=3.0)
    books = settle_episode(price=2.0, reward=0.25, success=False, cost=0.25, env=env)
    assert books.revenue == pytest.approx(0.5)
    assert books.cost == pytest.approx(0.75)
    assert books.net == pytest.approx(-0.25)
    assert books.roi == pytest.approx(0.5 / 0.75)


def test_roi_is_a_ratio_not_a_difference():
    assert roi(3.0, 2.0) == pytest.approx(1.5)
    assert roi(3.0, 0.0) == pytest.approx(3.0)


def test_energy_is_clipped_to_zero_and_cap():
    assert apply(1.0, -5.0, cap=10.0) == 0.0
    assert apply(9.0, 5.0, cap=10.0) == 10.0
    assert apply(4.0, 1.5, cap=10.0) == pytest.approx(5.5)


def test_ticket_is_paid_only_when_affordable():
    assert pay_ticket(1.0, 0.4) == (pytest.approx(0.6), True)
    assert pay_ticket(0.3, 0.4) == (0.3, False)
