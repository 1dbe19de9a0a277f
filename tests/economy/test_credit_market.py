"""Credit, market, trading and settlement against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolora.economy import market as mkt
from evolora.economy import trading
from evolora.economy.config import EconomyConfig, MarketConfig, Role
from evolora.economy.controller import Economy, Proposal
from evolora.economy.credit import expected_next, performance, split_credit, trend_residual


@settings(deadline=None)  # correctness only: a loaded machine must not fail it
@given(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0.01, 100))
def test_performance_is_monotone_in_the_loss_for_every_loss(a, b, reference):
    if a < b:
        assert performance(a, reference) >= performance(b, reference)
        if math.log1p(b) - math.log1p(a) > 1e-12 * math.log1p(reference):  # above float resolution
            assert performance(a, reference) > performance(b, reference)
    assert performance(reference, reference) == pytest.approx(0.0)


def test_performance_falls_for_losses_above_one_too():
    values = [performance(loss, 2.0) for loss in (0.5, 1.0, 1.5, 3.0, 10.0)]
    assert values == sorted(values, reverse=True)


def test_damped_trend_residual_by_hand():
    # slope of (1.0, 0.8, 0.6) at micro-batches (5, 10, 15) is -0.04 per micro-batch;
    # a 5-micro-batch round expects 0.6 + 0.5 * -0.04 * 5 = 0.5
    at = [5, 10, 15]
    assert expected_next([1.0, 0.8, 0.6], at, 20, 0.5) == pytest.approx(0.5)
    assert trend_residual([1.0, 0.8, 0.6], at, 0.4, 20, 0.5) == pytest.approx(0.1)
    assert trend_residual([1.0, 0.8, 0.6], at, 0.6, 20, 0.5) == pytest.approx(-0.1)
    # a round twice as long (accumulation 2) is expected to fall twice as far: no credit for 0.4
    assert trend_residual([1.0, 0.8, 0.6], at, 0.4, 25, 0.5) == pytest.approx(0.0)
    assert expected_next([0.7], [5], 10, 0.5) == 0.7
    assert split_credit(0.3, ["lr", "rank", "dropout"]) == pytest.approx(
        {"lr": 0.1, "rank": 0.1, "dropout": 0.1}
    )


def test_market_clears_the_budget_among_those_who_can_pay():
    bids = {"a": 5.0, "b": 3.0, "c": 4.0, "d": 1.0}
    costs = {"a": 1.0, "b": 1.0, "c": 10.0, "d": 1.0}
    assert mkt.clear(bids, costs, {"a": 5, "b": 3, "c": 4, "d": 1}, budget=2) == ["a", "b"]


def test_reprice_inflation_and_scarcity_by_hand():
    config = MarketConfig(budget=2, inflation=0.1, scarcity=0.5, volatility=0.0)
    market = mkt.Market(prices={"lr": 1.0})
    mkt.reprice(market, ["lr"], demand=4, config=config, rng=np.random.default_rng(0))
    # level 1.1, excess (4 - 2) / 2 = 1 -> 1 * 1.1 * (1 + 0.5) = 1.65
    assert market.prices["lr"] == pytest.approx(1.65)
    assert market.changes[-1] == pytest.approx(math.log(1.65))
    mkt.reprice(market, ["lr"], demand=1, config=config, rng=np.random.default_rng(0))
    assert market.prices["lr"] == pytest.approx(1.21)
    assert mkt.payment(0.01, market, MarketConfig(reward_scale=400)) == pytest.approx(4.84)
    assert mkt.payment(-0.01, market, MarketConfig(reward_scale=400)) == pytest.approx(-2.42)


def test_volatility_is_the_spread_of_log_price_changes():
    market = mkt.Market(prices={"lr": 1.0}, changes=[0.1, -0.1, 0.1, -0.1])
    assert mkt.volatility(market) == pytest.approx(0.1)


def test_lending_repayment_and_bankruptcy_by_hand():
    config = MarketConfig(need_multiple=2.0, lend_fraction=0.3, interest=0.1)
    tokens = {"a": 10.0, "b": 0.5, "c": 3.0}
    trades, loans = trading.lend(tokens, {"a": 1.0, "b": 1.0, "c": 1.0}, config)
    # b needs 2 - 0.5 = 1.5; a's surplus over 2 x need is 6, 0.3 of it is 1.8 -> lends 1.5
    assert trades == [{"lender": "a", "borrower": "b", "amount": pytest.approx(1.5)}]
    assert tokens == pytest.approx({"a": 8.5, "b": 2.0, "c": 3.0})
    assert loans[0].owed == pytest.approx(1.65)
    paid = trading.repay(loans, tokens, "b", earned=2.0, share=0.5)
    assert paid[0]["amount"] == pytest.approx(1.0)
    assert tokens == pytest.approx({"a": 9.5, "b": 1.0, "c": 3.0})
    assert loans[0].owed == pytest.approx(0.65)
    assert trading.bankrupt({"a": 0.0, "b": 1.0, "c": -2.0}) == ["a", "c"]
    trading.write_off(loans, "b")
    assert loans == []


def _economy(**market) -> Economy:
    config = EconomyConfig.model_validate(
        {
            "agents": {"roles": ["lr", "dropout"]},
            "market": {"volatility": 0.0, "initial_tokens": 20.0, **market},
        }
    )
    return Economy(config, ["g0"])


def test_settlement_pays_deposits_and_evaporates_as_computed_by_hand():
    economy = _economy()
    economy.probe, economy.probe_at = [1.0, 0.8], [5, 10]
    economy.credits = [0.1, -0.1, 0.1, -0.1]  # spread (rms) 0.1
    economy.pending = [
        Proposal(1, 10, "lr", 0, 1e-3, 2e-3, 2e-3, False, 1.0),
        Proposal(1, 10, "dropout", 1, 0.05, 0.1, 0.1, False, 1.0),
    ]
    out = economy.settle(0.5, 15)
    # expected 0.8 + 0.5 * (-0.2) = 0.7; credit 0.2, 0.1 each; paid 400 * 0.1 * level 1 = 40
    assert out["credit"] == pytest.approx(0.2)
    assert [p.credit for p in out["proposals"]] == pytest.approx([0.1, 0.1])
    assert economy.agents["lr"].tokens == pytest.approx(60.0)
    # deposit 1.0 x credit 0.2 / spread 0.1 = 2 on each chosen action;
    # myrcene 0.7 * 0.5 + 0.3 * 1 = 0.65 -> evaporation 0.1 * (1 - 0.325) = 0.0675
    keep = 1 - 0.0675
    assert economy.agents["lr"].tau == pytest.approx([3.0 * keep, keep, keep, keep])
    assert economy.agents["dropout"].tau == pytest.approx([keep, 3.0 * keep])
    assert economy.credits[-1] == pytest.approx(0.2)
    assert economy.pending == []


def test_negative_credit_costs_tokens_and_bankruptcy_rebirths():
    economy = _economy(initial_tokens=5.0, rebirth_tokens=7.0, trading=False)
    economy.probe, economy.probe_at = [1.0, 1.0], [5, 10]
    economy.pending = [Proposal(1, 10, "lr", 0, 1e-3, 2e-3, 2e-3, False, 1.0)]
    economy.agents["lr"].tau[0] = 3.0
    economy.settle(1.1, 15)  # credit -0.1 -> pays 0.5 * 400 * 0.1 = 20 > 5 tokens: bankrupt
    agent = economy.agents["lr"]
    assert agent.tokens == 7.0 and agent.rebirths == 1
    assert agent.tau == pytest.approx(np.ones(4))
    assert economy.agents["dropout"].tokens == 5.0


def test_decide_applies_every_winner_and_charges_the_price():
    economy = _economy(budget=1)
    for agent in economy.agents.values():
        agent.risk = 1.0
    economy.agents["dropout"].tokens = 30.0  # the richer bid wins the single slot
    proposals = economy.decide(step=5)
    assert [p.agent for p in proposals] == ["dropout"]
    assert economy.knobs.dropout == proposals[0].applied != proposals[0].before
    assert economy.agents["dropout"].tokens == pytest.approx(29.0)
    assert economy.agents["lr"].tokens == pytest.approx(20.0)
    assert economy.pending == proposals


def test_out_of_range_proposal_is_clipped_and_logged():
    economy = _economy()
    proposal = economy.apply(Role.LR, 5.0, step=1, agent="lr", knob="lr")
    assert proposal.clipped and proposal.proposed == 5.0
    assert economy.knobs.lr == proposal.applied == economy.config.knobs.lr_bounds.high
