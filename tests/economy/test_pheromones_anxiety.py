"""Pheromones read back what was deposited and evaporate at the set rate; modulators change their
quantities; anxiety rises, falls and panics as computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evolora.economy import neurochem
from evolora.economy import pheromones as ph
from evolora.economy.anxiety import Anxiety, Outcome, observe
from evolora.economy.config import AnxietyConfig, EconomyConfig, NeuroConfig
from evolora.economy.controller import Economy


def test_deposit_is_read_back_and_evaporation_follows_the_rate():
    tau = np.ones(4)
    tau = ph.deposit(tau, 2, reward=0.1, per_reward=50.0)
    assert tau == pytest.approx([1, 1, 6, 1])
    assert ph.deposit(tau, 1, reward=-3.0, per_reward=50.0) == pytest.approx(tau)
    for _ in range(5):
        tau = ph.evaporate(tau, 0.2, floor=0.01)
    assert tau == pytest.approx(np.array([1, 1, 6, 1]) * 0.8**5)
    assert ph.evaporate(np.array([0.02]), 0.9, floor=0.01) == pytest.approx([0.01])
    probs = ph.probabilities(tau, np.ones(4), alpha=1.0, beta=1.0, exploration=0.0)
    assert probs == pytest.approx(np.array([1, 1, 6, 1]) / 9)
    probs = ph.probabilities(tau, np.ones(4), alpha=1.0, beta=1.0, exploration=1.0)
    assert probs == pytest.approx([0.25] * 4)


def test_the_deposit_signal_is_the_credit_in_units_of_the_recent_spread():
    assert ph.signal(0.02, [0.01, -0.01, 0.01, -0.01]) == pytest.approx(2.0)
    assert ph.signal(-0.005, [0.01, -0.01]) == pytest.approx(-0.5)
    assert ph.signal(0.3, [0.1]) == 0.0  # no spread known yet: nothing deposited
    # the same credit marks less when credits have been varying more
    assert ph.signal(0.02, [0.04, -0.04]) < ph.signal(0.02, [0.01, -0.01])


def _lr_choices(enabled: bool) -> np.ndarray:
    config = EconomyConfig.model_validate(
        {"agents": {"roles": ["lr"]}, "pheromones": {"enabled": enabled}}
    )
    economy = Economy(config, ["g"])
    agent = economy.agents["lr"]
    counts = np.zeros(4)
    for _ in range(300):
        agent.risk, agent.tokens, agent.tau = 1.0, 100.0, np.array([0.1, 0.1, 10.0, 0.1])
        counts[economy.decide(step=0)[0].action] += 1
    return counts / counts.sum()


def test_agents_read_the_pheromone_field_when_choosing():
    on, off = _lr_choices(True), _lr_choices(False)
    assert on[2] > 0.6  # the strong trail dominates (exploration keeps the rest possible)
    assert off[2] < 0.4  # with the field off the same agent spreads its choices


def test_each_modulator_changes_its_documented_quantity():
    config = NeuroConfig()
    low, high = neurochem.Neuro(0, 0, 0, 0), neurochem.Neuro(1, 1, 1, 1)
    assert neurochem.evaporation(high, 0.1) == pytest.approx(0.05)
    assert neurochem.evaporation(low, 0.1) == pytest.approx(0.1)
    assert neurochem.step_scale(high) == 1.5 and neurochem.step_scale(low) == 0.5
    assert neurochem.exploration(high, config) == config.exploration_min
    assert neurochem.exploration(low, config) == config.exploration_max
    assert neurochem.panic_threshold(high, 0.8) == 1.6
    moved = neurochem.update(
        neurochem.Neuro(),
        {"myrcene": 1, "limonene": 0, "pinene": 1, "linalool": 0},
        NeuroConfig(rate=0.5),
    )
    assert moved == neurochem.Neuro(0.75, 0.25, 0.75, 0.25)
    still = neurochem.update(
        neurochem.Neuro(),
        {"myrcene": 1, "limonene": 0, "pinene": 1, "linalool": 0},
        NeuroConfig(enabled=False),
    )
    assert still == neurochem.Neuro()


def test_anxiety_rises_with_stagnation_and_regression_and_falls_with_improvement():
    config = AnxietyConfig(rise=0.25, regression_rise=0.5, fall=0.3, tolerance=0.0)
    state = Anxiety()
    assert observe(state, 1.0, config) is Outcome.IMPROVED and state.level == 0.0
    assert observe(state, 1.0, config) is Outcome.STAGNANT and state.level == 0.25
    assert observe(state, 1.1, config) is Outcome.REGRESSED and state.level == 0.75
    assert state.stagnant == 2
    assert observe(state, 0.9, config) is Outcome.IMPROVED
    assert state.level == pytest.approx(0.45) and state.best == 0.9 and state.stagnant == 0
    assert observe(state, float("nan"), config) is Outcome.REGRESSED


def test_panic_by_hand():
    anxiety = {"tolerance": 0.0, "threshold": 0.8, "severe": 0.0}
    config = EconomyConfig.model_validate({"anxiety": anxiety})
    economy = Economy(config, ["g"])
    lr = economy.knobs.lr
    # threshold 0.8 x (1 + linalool 0.5) = 1.2; levels 0, 0.25, 0.75, then 1.25 -> panic
    for val in (1.0, 1.0, 1.1):
        assert not economy.observe_validation(val, step=0)["panic"]
    event = economy.observe_validation(1.2, step=0)
    assert event["panic"] and event["rollback"]  # 1.2 > best 1.0 x 1.02
    assert economy.knobs.lr == pytest.approx(lr * 0.5)
    assert event["proposal"].agent == "panic" and event["proposal"].before == lr
    assert economy.anxiety.level == pytest.approx(0.625)
    base = neurochem.exploration(economy.neuro, config.neuro)
    assert economy.exploration() == pytest.approx(base + config.anxiety.explore_boost)


@pytest.mark.parametrize(
    ("severe", "val", "panics"), [(0.05, 1.06, True), (0.05, 1.04, False), (0.0, 1.5, False)]
)
def test_a_severe_regression_panics_at_once(severe, val, panics):
    # one regression lifts anxiety to 0.5, below the threshold 0.5 x (1 + linalool 0.5)
    config = EconomyConfig.model_validate({"anxiety": {"tolerance": 0.0, "severe": severe}})
    economy = Economy(config, ["g"])
    lr = economy.knobs.lr
    assert not economy.observe_validation(1.0, step=0)["panic"]
    event = economy.observe_validation(val, step=15)
    assert event["panic"] is panics and economy.anxiety.level <= 0.5
    assert event["rollback"] is panics  # val > best 1.0 x 1.02
    assert economy.knobs.lr == pytest.approx(lr * 0.5 if panics else lr)


def test_anxiety_off_never_panics():
    config = EconomyConfig.model_validate({"anxiety": {"enabled": False}})
    economy = Economy(config, ["g"])
    events = [economy.observe_validation(v, 0) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    assert not any(e["panic"] for e in events) and economy.knobs.lr == config.knobs.lr
