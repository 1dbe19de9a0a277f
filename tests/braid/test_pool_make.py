"""The default pool's specialists: each adapter learns its own family (seeded, tiny host), and a
pool is cached on disk and remade only when the config that made it changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from braid_models import FAMILIES, tiny_host

from evolora.braid import pool_make
from evolora.braid.config import PoolMakeConfig
from evolora.braid.pool import made_with, with_adapter
from evolora.braid.pool_make import train_specialists
from evolora.tasks import TaskGrid


def _nll(host, family, seed=5) -> float:
    """Mean negative log-likelihood of `family`'s holdout answers under `host`."""
    examples = TaskGrid([family], [1]).sample_batch(np.random.default_rng(seed), 32,
                                                     split="holdout")
    return -float(host.loglik([e.prompt for e in examples],
                              [e.answer + "\n" for e in examples]).mean())


def test_each_specialist_learns_its_own_family(tokenizer):
    host = tiny_host(tokenizer, 3, name="h")
    config = PoolMakeConfig(families=FAMILIES, difficulties=[1], steps=60, batch_per_family=16,
                            lr=1e-2, rank=4, extra_steps={})
    population = train_specialists(host, config)
    members = [with_adapter(host, population.get_member(k), population.scale, f)
               for k, f in enumerate(FAMILIES)]
    for k, family in enumerate(FAMILIES):
        own, other = _nll(members[k], family), _nll(members[1 - k], family)
        assert own < other - 0.5 and own < _nll(host, family) - 0.5, (family, own, other)


def test_given_samplers_choose_what_each_specialist_learns(tokenizer):
    host = tiny_host(tokenizer, 3, name="h")
    config = PoolMakeConfig(families=FAMILIES, difficulties=[1], steps=60, batch_per_family=16,
                            lr=1e-2, rank=4, extra_steps={})
    swapped = [TaskGrid([f], [1]) for f in reversed(FAMILIES)]
    population = train_specialists(host, config, grids=swapped)
    members = [with_adapter(host, population.get_member(k), population.scale, f)
               for k, f in enumerate(FAMILIES)]
    for k, family in enumerate(reversed(FAMILIES)):  # member k learnt the family of its sampler
        own, other = _nll(members[k], family), _nll(members[1 - k], family)
        assert own < other - 0.5, (family, own, other)


def test_pool_is_cached_and_remade_when_its_config_changes(tmp_path, monkeypatch, pool):
    made = []

    def fake_make(config, device=None, checkpoints=None):  # here only the caching is tested
        made.append(config)
        return pool, {}

    monkeypatch.setattr(pool_make, "make_pool", fake_make)
    monkeypatch.setattr("evolora.braid.pool.load_pool", lambda folder, device=None: pool)
    config = PoolMakeConfig(steps=3)
    assert pool_make.ensure_pool(tmp_path, config) is pool and len(made) == 1
    assert made_with(tmp_path) == config.model_dump()
    pool_make.ensure_pool(tmp_path, config)
    assert len(made) == 1  # cached
    pool_make.ensure_pool(tmp_path, PoolMakeConfig(steps=4))
    assert len(made) == 2  # stale: remade


def test_a_killed_make_resumes_to_the_same_adapters(tokenizer, tmp_path):
    config = PoolMakeConfig(families=FAMILIES, difficulties=[1], steps=6, batch_per_family=4,
                            rank=2, checkpoint_every=2, extra_steps={})
    whole = train_specialists(tiny_host(tokenizer, 3), config).state_tensors()

    class Killed(Exception):
        pass

    def kill_at_3(step, loss):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        train_specialists(tiny_host(tokenizer, 3), config, kill_at_3, tmp_path)
    steps = []
    resumed = train_specialists(tiny_host(tokenizer, 3), config,
                                lambda step, loss: steps.append(step), tmp_path)
    assert steps == [2, 3, 4, 5]  # the kill came before step 4 was saved: from step 2
    for key, tensor in resumed.state_tensors().items():
        torch.testing.assert_close(tensor, whole[key])


def test_a_pool_assembled_by_hand_is_used_as_it_is(tmp_path, monkeypatch, pool):
    pool.save(tmp_path, {})  # no make config recorded
    monkeypatch.setattr(pool_make, "make_pool", lambda *a, **k: pytest.fail("remade"))
    monkeypatch.setattr("evolora.braid.pool.load_pool", lambda folder, device=None: pool)
    assert pool_make.ensure_pool(tmp_path, PoolMakeConfig()) is pool


def test_extra_steps_train_only_their_family(tokenizer):
    """Extra steps move the named family's adapter alone: the other adapter ends exactly as a
    make without extra steps leaves it (Adam's momentum does not carry it on)."""
    base = dict(families=FAMILIES, difficulties=[1], steps=4, batch_per_family=4, rank=2)
    plain = train_specialists(tiny_host(tokenizer, 3), PoolMakeConfig(
        **base, extra_steps={})).state_tensors()
    longer = train_specialists(tiny_host(tokenizer, 3), PoolMakeConfig(
        **base, extra_steps={"math": 3})).state_tensors()
    math, logic = FAMILIES.index("math"), FAMILIES.index("logic")
    for key, tensor in longer.items():
        torch.testing.assert_close(tensor[logic], plain[key][logic])
    assert any(not torch.equal(t[math], plain[k][math]) for k, t in longer.items())
    with pytest.raises(ValueError, match="extra_steps"):
        PoolMakeConfig(**base, extra_steps={"sorting": 3})
    assert PoolMakeConfig(families=["logic"]).extra_steps == {}  # the default fits any pool


def test_checkpoints_of_another_config_do_not_block_a_make(tokenizer, tmp_path):
    """A folder holding a make of another config at later steps: they are dropped, not resumed,
    and this make saves its own."""
    other = PoolMakeConfig(families=FAMILIES, difficulties=[1], steps=4, batch_per_family=4,
                           rank=2, checkpoint_every=1, extra_steps={})
    train_specialists(tiny_host(tokenizer, 3), other, checkpoints=tmp_path)
    config = other.model_copy(update={"steps": 3, "lr": 1e-3})
    steps = []
    train_specialists(tiny_host(tokenizer, 3), config, lambda step, loss: steps.append(step),
                      tmp_path)
    assert steps == [0, 1, 2]
    assert [p.name for p in sorted(tmp_path.glob("step_*.json"))] == [
        "step_000001.json", "step_000002.json", "step_000003.json"]


def test_snapshots_along_training_are_the_shorter_makes(tokenizer):
    """After S of N steps the adapters are exactly those of a make with `steps=S` (the sampler
    draws the same batches), which lets one run score a whole learning curve."""
    base = dict(families=FAMILIES, difficulties=[1], batch_per_family=4, rank=2, extra_steps={})
    seen = {}

    def snapshot(steps_done, population):
        seen[steps_done] = {k: t.clone() for k, t in population.state_tensors().items()}

    final = train_specialists(tiny_host(tokenizer, 3), PoolMakeConfig(**base, steps=5),
                              on_snapshot=snapshot).state_tensors()
    assert sorted(seen) == [1, 2, 3, 4, 5]
    shorter = train_specialists(tiny_host(tokenizer, 3), PoolMakeConfig(**base, steps=3))
    for key, tensor in shorter.state_tensors().items():
        torch.testing.assert_close(seen[3][key], tensor)
        torch.testing.assert_close(seen[5][key], final[key])
    assert any(not torch.equal(seen[3][k], final[k]) for k in final)
