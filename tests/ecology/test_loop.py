import numpy as np
import pytest
import torch
from ecology_helpers import small_config

from evolora.ecology.loop import Ecology
from evolora.ecology.roles import Role, role_of
from evolora.telemetry.rundir import RunDir


def _run(host, config, root, stop_after=None):
    run = RunDir.create(root, config, name="ecology")
    ecology = Ecology.start(config, host, run)
    while not ecology.finished and (stop_after is None or ecology.generation < stop_after):
        ecology.step()
    ecology.close()
    return run


def _final_state(host, config, run):
    ecology = Ecology.resume(config, host, RunDir.open(run.path))
    tensors = dict(ecology.population.state_tensors())
    for rule in ecology.rules:  # optimizer moments too: a resumed run must continue exactly
        tensors.update({f"{rule.name}/{k}": v for k, v in rule.state_tensors().items()})
    state = tensors, ecology.colony.state(), ecology.market.state()
    ecology.close()
    return state


@pytest.mark.parametrize(
    ("rules", "optimizer", "basis"),
    [
        (["es"], "sgd", "random"),
        (["hebbian"], "sgd", "random"),
        (["backprop"], "sgd", "random"),
        (["es"], "sgd", "host"),
        (["backprop", "es"], "adam", "random"),
    ],
)
def test_resume_continues_exactly_like_an_uninterrupted_run(
    tiny_host, tmp_path, rules, optimizer, basis
):
    config = small_config(
        generations=4,
        lora={"basis": basis},
        learning={"rules": rules, "batch": 2, "es": {"pairs": 2, "optimizer": optimizer}},
    )
    whole = _run(tiny_host, config, tmp_path / "whole")

    part = _run(tiny_host, config, tmp_path / "part", stop_after=2)
    resumed = Ecology.resume(config, tiny_host, RunDir.open(part.path))
    assert resumed.generation == 2
    while not resumed.finished:
        resumed.step()
    resumed.close()

    tensors_a, colony_a, market_a = _final_state(tiny_host, config, whole)
    tensors_b, colony_b, market_b = _final_state(tiny_host, config, part)
    assert colony_a == colony_b
    assert market_a == market_b
    for key, value in tensors_a.items():
        assert torch.equal(value, tensors_b[key]), key
    summaries = RunDir.open(part.path).read_stream("gen_summaries")
    assert [s["generation"] for s in summaries] == [1, 2, 3, 4]
    assert [s["attempt"] for s in summaries] == [0, 0, 1, 1]


def test_population_stays_within_bounds_while_organelles_die_and_reproduce(tiny_host, tmp_path):
    # A steep ticket bankrupts organelles; a low reproduction threshold lets the rich split.
    config = small_config(
        generations=6,
        energy={"m": 1.5, "initial": 4.0, "grace_generations": 0},
        reproduction={"energy_threshold": 1.0},
        population={"initial": 3, "min": 2, "max": 4},
    )
    run = RunDir.create(tmp_path, config, name="ecology")
    ecology = Ecology.start(config, tiny_host, run)
    sizes, born, died = [], 0, 0
    while not ecology.finished:
        summary = ecology.step()
        sizes.append(summary["population/size"])
        born += summary["population/born"]
        died += summary["population/died"]
    ecology.close()
    assert all(2 <= s <= 4 for s in sizes)
    assert died > 0 and born > 0
    slots = [o.slot for o in ecology.colony.organelles]
    assert len(set(slots)) == len(slots) and 0 not in slots


def test_energy_books_balance_for_every_episode(tiny_host, tmp_path):
    config = small_config(generations=1)
    run = _run(tiny_host, config, tmp_path)
    episodes = RunDir.open(run.path).read_stream("episodes")
    assert episodes
    for e in episodes:
        assert e["revenue"] == pytest.approx(
            e["price"] * e["reward"]
            + (config.environment.success_reward_bonus if e["success"] else 0)
        )
        assert e["roi"] == pytest.approx(e["revenue"] / e["cost"])


def test_probe_forage_and_learning_prompts_never_overlap(tiny_host, tmp_path):
    config = small_config(generations=1)
    run = RunDir.create(tmp_path, config, name="ecology")
    ecology = Ecology.start(config, tiny_host, run)
    learned = {ecology._train_example(("math", 2), Role.learn).prompt for _ in range(60)}
    foraged = {ecology._train_example(("math", 2), Role.forage).prompt for _ in range(60)}
    probe = {ex.prompt for ex in ecology.probe}
    assert learned.isdisjoint(foraged) and learned.isdisjoint(probe) and foraged.isdisjoint(probe)
    assert {ex.prompt for ex in ecology.holdout}.isdisjoint(learned | foraged | probe)
    ecology.close()
    roles = [
        role_of(ex, 0.1, 0.3) for ex in ecology.grid.sample_batch(np.random.default_rng(0), 2000)
    ]
    assert np.isclose(np.mean([r is Role.probe for r in roles]), 0.1, atol=0.03)
    assert np.isclose(np.mean([r is Role.forage for r in roles]), 0.3, atol=0.04)
