import numpy as np
import pytest
import torch
from ecology_helpers import hash_scorer, small_config

import evolora.ecology.evaluation as evaluation_module
import evolora.ecology.phases.foraging as foraging_module
import evolora.ecology.phases.learning as learning_module
from evolora.ecology.loop import Ecology
from evolora.ecology.roles import Role, role_of
from evolora.tasks.splits import split_of
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
        (["compose", "backprop"], "sgd", "random"),
    ],
)
def test_resume_continues_exactly_like_an_uninterrupted_run(
    tiny_host, tmp_path, rules, optimizer, basis
):
    config = small_config(
        generations=4,
        lora={"basis": basis},
        learning={
            "rules": rules,
            "batch": 2,
            "es": {"pairs": 2, "optimizer": optimizer},
            "compose": {"mix": 1, "pairs": 2, "birth_steps": 2},
        },
        genes={"rank": 2, "capacity": 3},
        reproduction={"energy_threshold": 3.0},  # parents become genes for their offspring
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


def test_learning_selection_and_evaluation_prompts_never_overlap(tiny_host, tmp_path):
    config = small_config(generations=1)
    run = RunDir.create(tmp_path, config, name="ecology")
    ecology = Ecology.start(config, tiny_host, run)
    learned = {ecology.example(("math", 2), Role.learn).prompt for _ in range(60)}
    selected = {ecology.example(("math", 2), Role.select).prompt for _ in range(60)}
    selected |= {ex.prompt for ex in ecology.probe}
    selected |= {ex.prompt for batch in ecology.route_examples.values() for ex in batch}
    evaluated = {ex.prompt for ex in ecology.holdout}
    ecology.close()
    assert learned.isdisjoint(selected) and evaluated.isdisjoint(learned | selected)
    assert {split_of(p) for p in learned} == {"train"}
    assert {split_of(p) for p in selected | evaluated} == {"holdout"}
    holdout = ecology.grid.sample_batch(np.random.default_rng(0), 3000, split="holdout")
    share = np.mean([role_of(ex, 0.4) is Role.select for ex in holdout])
    assert np.isclose(share, 0.4, atol=0.04)


def test_learning_steps_carry_the_runs_progress_for_the_schedule(tiny_host, tmp_path, monkeypatch):
    seen: list[list[float]] = []
    learn_from_plan = learning_module.learn_from_plan

    def recording(rules, plan):
        seen.append(plan.progress)
        return learn_from_plan(rules, plan)

    monkeypatch.setattr(learning_module, "learn_from_plan", recording)
    config = small_config(generations=3, learning={"steps": 2, "rules": ["backprop"]})
    _run(tiny_host, config, tmp_path)
    steps = sorted({p for plan in seen for p in plan})
    assert steps == pytest.approx([(k + 0.5) / 6 for k in range(6)])  # 3 generations x 2 steps


def test_a_merge_changes_the_colony_adapter_and_seeds_offspring(tiny_host, tmp_path, monkeypatch):
    # The tiny host answers nothing right, so a hashed scorer makes adapters win at random; with
    # lenient gates the first attempt merges.
    monkeypatch.setattr(foraging_module, "score", hash_scorer("merge"))
    monkeypatch.setattr(evaluation_module, "score", hash_scorer("merge"))
    config = small_config(
        generations=6,
        learning={"rules": ["backprop"], "batch": 4, "steps": 2},
        energy={"m": 0.0},
        assimilation_tuning={
            "window": 2,
            "min_wins": 1,
            "energy_gate": 0.0,
            "uplift_threshold": -1.0,
            "p_value": 1.0,
            "holdout_margin": -1.0,
            "probe_z": 0.0,
            "holdout_probe_size": 4,
            "offspring": 1,
            "permutations": 100,
        },
    )
    run = RunDir.create(tmp_path, config, name="ecology")
    ecology = Ecology.start(config, tiny_host, run)
    before = ecology.population.get_member(0)
    seeded = []
    while not ecology.finished and not ecology.merges:
        ids = {o.id for o in ecology.colony.organelles}
        ecology.step()
        seeded = [o for o in ecology.colony.organelles if o.id not in ids and o.parent is None]
    after = ecology.population.get_member(0)
    ecology.close()
    assert ecology.merges >= 1
    assert any(not torch.equal(before[k][1], after[k][1]) for k in before)
    assert seeded  # offspring of the new merged adapter
    attempts = RunDir.open(run.path).read_stream("assimilation")
    assert attempts[-1]["passed"] and attempts[-1]["kept_energy"] > 0
    assert any(g.origin == "merge" for g in ecology.genes.genes)


def test_the_diversity_guard_and_the_species_cap_act_inside_the_loop(
    tiny_host, tmp_path, monkeypatch
):
    # Random wins make energies unequal and cheap reproduction lets lineages grow: a low Gini cap
    # and a low species cap must step in.
    monkeypatch.setattr(foraging_module, "score", hash_scorer("guard"))
    config = small_config(
        generations=5,
        energy={"m": 0.2, "initial": 6.0},
        reproduction={"energy_threshold": 2.0},
        population={"initial": 2, "min": 2, "max": 5},
        diversity={"energy_gini_cap": 0.05, "species_share_cap": 0.3},
    )
    run = RunDir.create(tmp_path, config, name="ecology")
    ecology = Ecology.start(config, tiny_host, run)
    while not ecology.finished:
        summary = ecology.step()
    ecology.close()
    gating = summary["assimilation/gating"]
    assert gating.get("diversity/redistributions", 0) > 0
    assert gating.get("diversity/species_capped", 0) > 0


@pytest.mark.parametrize("preset", ["default", "relaxed", "debug"])
def test_every_preset_loads(preset):
    from evolora.ecology.commands import preset_path
    from evolora.ecology.config import EcologyConfig
    from evolora.telemetry.config_io import load_config

    config = load_config(preset_path(preset), EcologyConfig)
    assert config.evaluation.per_cell >= 1 and config.learning.rules
