"""The ask/tell study on small seeded problems whose answer is known."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from swarm_objectives import bowl, flaky

from evolora.errors import EvoloraError
from evolora.swarm import Swarm, SwarmConfig, Trial
from evolora.swarm.config import FidelityConfig

BOX = {
    "x": {"kind": "float", "low": -3.0, "high": 3.0},
    "y": {"kind": "float", "low": -3.0, "high": 3.0},
}


def test_finds_the_minimum_of_a_bowl():
    swarm = Swarm(BOX, SwarmConfig(seed=0))
    best = swarm.optimize(bowl, 300)
    assert best.value < 1e-4
    assert best.params["x"] == pytest.approx(0.3, abs=0.01)
    assert best.params["y"] == pytest.approx(-1.2, abs=0.01)


def test_maximises_when_asked():
    swarm = Swarm(BOX, SwarmConfig(seed=1, direction="maximize"))
    best = swarm.optimize(lambda p: -bowl(p), 300)
    assert best.value > -1e-3 and best.value == max(t.value for t in swarm.trials)


def test_same_seed_same_search():
    first = Swarm(BOX, SwarmConfig(seed=3))
    second = Swarm(BOX, SwarmConfig(seed=3))
    first.optimize(bowl, 120)
    second.optimize(bowl, 120)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    third = Swarm(BOX, SwarmConfig(seed=4))
    third.optimize(bowl, 20)
    assert [t.params for t in third.trials] != [t.params for t in first.trials[:20]]


def test_failures_are_recorded_and_the_search_goes_on():
    swarm = Swarm(BOX, SwarmConfig(seed=0))
    best = swarm.optimize(flaky, 200)
    failed = [t for t in swarm.trials if t.state == "failed"]
    assert failed and all(t.value is None for t in failed)
    assert any("diverged" in t.error for t in failed)
    assert any("nan" in t.error.lower() for t in failed)
    assert best.value < 1e-2 and -1 <= best.params["x"] <= 1


def test_ask_many_before_telling():
    swarm = Swarm(BOX, SwarmConfig(seed=0))
    for _ in range(20):
        batch = [swarm.ask() for _ in range(4)]
        for trial in reversed(batch):
            swarm.tell(trial, bowl(trial.params))
    assert swarm.best_value < 0.5
    with pytest.raises(EvoloraError, match="already told"):
        swarm.tell(batch[0], 1.0)


def test_conditional_space_is_searched():
    space = {
        "kind": {"kind": "categorical", "choices": ["flat", "bowl"]},
        "x": {
            "kind": "float",
            "low": -3.0,
            "high": 3.0,
            "condition": {"parent": "kind", "values": ["bowl"]},
        },
    }
    swarm = Swarm(space, SwarmConfig(seed=0))
    best = swarm.optimize(lambda p: 1.0 if p["kind"] == "flat" else (p["x"] - 1) ** 2, 150)
    assert best.params["kind"] == "bowl" and best.value < 1e-3
    assert {"x"} not in [
        set(t.params) - {"kind"} for t in swarm.trials if t.params["kind"] == "flat"
    ]


def test_multi_fidelity_promotes_the_top_third_and_trusts_the_top_rung():
    calls = []

    def noisy(params, budget):
        calls.append(budget)
        noise = math.sin(1e3 * params["x"]) / budget  # shrinks as the budget grows
        return bowl(params) + noise

    fidelity = FidelityConfig(enabled=True, min_budget=1, max_budget=9, refine_share=0)
    cfg = SwarmConfig(seed=0, fidelity=fidelity)
    swarm = Swarm(BOX, cfg)
    best = swarm.optimize(noisy, 120)
    assert swarm.rungs.budgets == [1, 3, 9]
    # ASHA: each rung gets a fraction of the one below (more than 1/eta while the search
    # improves, as new results beat the rung's old ones).
    assert calls.count(1) > 2 * calls.count(3) > 0
    assert calls.count(3) > calls.count(9) > 0
    assert best.rung == 2 and best.budget == 9
    promoted = [t for t in swarm.trials if t.rung > 0]
    assert all(t.agent is None for t in promoted)


def test_the_leading_full_budget_configuration_is_refined_at_the_full_budget():
    """Low budgets see a flat plateau over the whole basin (they cull, they cannot rank), so
    only full-budget steps around the full-budget leader find the bottom."""

    def plateau(params, budget):
        value = bowl(params)
        return value if budget >= 3 or value > 1.0 else 0.0

    def best_of(share: float, seed: int) -> tuple[float, Swarm]:
        fidelity = FidelityConfig(enabled=True, min_budget=1, max_budget=3, refine_share=share)
        # The long-study pace: this isolates refinement (the pace has its own test).
        swarm = Swarm(BOX, SwarmConfig(seed=seed, fidelity=fidelity, tempo=False))
        return swarm.optimize(plateau, 90).value, swarm

    on = [best_of(0.5, seed) for seed in range(3)]
    off = [best_of(0.0, seed)[0] for seed in range(3)]
    assert np.mean([value for value, _ in on]) < np.mean(off) / 3
    _, swarm = on[0]
    refined = [t for t in swarm.trials if t.team == swarm.refiner.id]
    assert refined and all(t.rung == swarm.rungs.top and t.agent is not None for t in refined)
    assert any(e["event"] == "refine" for e in swarm.events)
    assert best_of(0.0, 0)[1].refiner is None


def test_a_rung_promotes_only_once_it_holds_promote_after_results():
    from evolora.swarm.fidelity import Rungs

    def queued(promote_after: int | None, losses: list[float]) -> list[int]:
        cfg = FidelityConfig(enabled=True, min_budget=1, max_budget=3, promote_after=promote_after)
        rungs = Rungs(cfg)
        for number, loss in enumerate(losses):
            rungs.record(0, loss, number)
        return [number for number, _ in rungs.queue]

    losses = [3.0, 2.0, 5.0, 1.0, 4.0, 0.5]
    assert queued(None, losses[:3]) == [1]  # ASHA: the best of the first three goes
    assert queued(6, losses[:5]) == []  # five results are too few
    assert queued(6, losses) == [5, 3]  # then the top third of six, best first
    assert queued(None, losses) == [1, 3, 5]  # early promotions are never taken back


def test_refinement_waits_for_refine_after_full_budget_results_and_takes_their_best():
    def start(after: int) -> tuple[int, Trial, list[Trial]]:
        """Full-budget results told when refinement started, its leader, and those results."""
        fidelity = FidelityConfig(
            enabled=True, min_budget=1, max_budget=3, refine_share=0.5, refine_after=after
        )
        swarm = Swarm(BOX, SwarmConfig(seed=0, fidelity=fidelity))
        seen: list[int] = []

        def watch(trial: Trial) -> None:
            if swarm.refiner is not None and not seen:
                seen.append(len(swarm.rungs.results[swarm.rungs.top]))

        swarm.optimize(lambda params, budget: bowl(params), 60, callback=watch)
        leader = next(e["leader"] for e in swarm.events if e["event"] == "refine")
        top = [t for t in swarm.trials if t.rung == swarm.rungs.top and t.state == "complete"]
        return seen[0], swarm.trials[leader], top

    told, leader, top = start(1)
    assert told == 1 and leader is top[0]  # the first full-budget result leads at once
    told, leader, top = start(3)
    assert told == 3 and leader.value == min(t.value for t in top[:3])


def test_a_stalled_refinement_gives_its_trials_back_to_exploration():
    def flat(params, budget):
        return 1.0  # the first full-budget leader is never improved on

    def refined(patience: float | None) -> tuple[int, Swarm]:
        fidelity = FidelityConfig(
            enabled=True, min_budget=1, max_budget=3, refine_share=0.5, refine_patience=patience
        )
        swarm = Swarm(BOX, SwarmConfig(seed=0, fidelity=fidelity))
        swarm.optimize(flat, 60)
        return sum(
            t.team == swarm.refiner.id and "source" not in t.extra for t in swarm.trials
        ), swarm

    kept, _ = refined(None)
    slowed, swarm = refined(0.1)  # its share halves after each 6 trials without improvement
    assert 6 <= slowed < 0.6 * kept  # 14 of 27 here
    slow = [e for e in swarm.events if e["event"] == "refine-slow"]
    assert slow and "25%" in slow[0]["reason"]


def test_refinement_waits_for_a_leader_better_than_the_baseline():
    def plateau(params, budget):
        value = bowl(params)
        return value if budget >= 3 or value > 1.0 else 0.0

    def run(floor: float | None) -> Swarm:
        fidelity = FidelityConfig(
            enabled=True, min_budget=1, max_budget=3, refine_share=0.5, refine_above=floor
        )
        swarm = Swarm(BOX, SwarmConfig(seed=0, fidelity=fidelity))
        swarm.optimize(plateau, 90)
        return swarm

    def leaders(swarm: Swarm) -> list[float]:
        return [swarm.trials[e["leader"]].value for e in swarm.events if e["event"] == "refine"]

    assert run(-1.0).refiner is None  # nothing beats the baseline: no refinement
    anyone, gated = leaders(run(None)), leaders(run(0.5))
    assert anyone[0] >= 0.5  # without the floor, refinement starts around a poorer leader
    assert gated and all(value < 0.5 for value in gated)


def test_uninformative_low_budgets_are_dropped_and_informative_ones_kept():
    def noise_below_full(params, budget):
        if budget >= 3:
            return bowl(params)
        return zlib.crc32(repr(sorted(params.items())).encode()) / 2**32 * 10

    def noisy_bowl(params, budget):
        return bowl(params) + math.sin(1e3 * params["x"]) / budget

    def run(objective, seed: int, agreement: float | None) -> Swarm:
        fidelity = FidelityConfig(
            enabled=True, min_budget=1, max_budget=3, refine_share=0, min_agreement=agreement
        )
        swarm = Swarm(BOX, SwarmConfig(seed=seed, fidelity=fidelity))
        swarm.optimize(objective, 60)
        return swarm

    dropped = [run(noise_below_full, seed, 0.0) for seed in range(3)]
    for swarm in dropped:
        assert swarm.skip_low and swarm.rungs.agreement() <= 0.0
        assert any(e["event"] == "fidelity" for e in swarm.events)
        at = next(i for i, e in enumerate(swarm.trials) if e.rung == 1 and "source" not in e.extra)
        assert all(t.rung == 1 for t in swarm.trials[at + 1 :])  # new trials at the full budget
    kept = [run(noise_below_full, seed, None).best_value for seed in range(3)]
    assert np.mean([s.best_value for s in dropped]) < np.mean(kept) / 3
    informed = run(noisy_bowl, 0, 0.0)
    assert not informed.skip_low and informed.rungs.agreement() > 0.3


def test_every_feature_leaves_a_trace():
    swarm = Swarm(BOX | {"z": {"kind": "float", "low": -3, "high": 3}}, SwarmConfig(seed=0))
    swarm.optimize(lambda p: bowl(p) + np.cos(3 * p["z"]) + p["z"] ** 2 / 10, 400)
    kinds = {event["event"] for event in swarm.events}
    assert {"shrink", "reassign", "clone", "reallocate", "status"} <= kinds


def test_a_short_study_paces_its_hierarchy_to_its_horizon():
    def kinds(tempo: bool) -> set[str]:
        swarm = Swarm(BOX, SwarmConfig(seed=0, tempo=tempo))
        swarm.optimize(bowl, 20)
        assert swarm.horizon == 20  # optimize tells the swarm how long the study is
        return {event["event"] for event in swarm.events}

    assert "status" in kinds(True)  # the supervisor acts within the 20 trials
    assert "status" not in kinds(False)  # every 24 tells: never within them
    paced = Swarm(BOX, SwarmConfig(seed=0, horizon=24))
    assert (paced.supervisor_every, paced.manager_every) == (6, 2)
    assert paced.patience == 10 and paced.supervisor.retire_after == 15
    long = Swarm(BOX, SwarmConfig(seed=0, horizon=1000))
    assert (long.supervisor_every, long.manager_every, long.patience) == (24, 6, 40)
