"""Pair banks: a (strategy, lead, joiner) bank serves exactly its pair's rows, saves and reloads,
and its training moves it alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from evolora.braid import pair_train
from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FusionTrainConfig
from evolora.braid.plan import BraidSpec, Plan
from evolora.braid.pool import ModelPool
from evolora.errors import EvoloraError
from evolora.hosts.generation import encode, left_pad

PROMPTS = ["math: 3+4=", "logic: T and F =", "math: 12-7*2=", "math: 5*5="]


def _inputs(pool):
    return left_pad(encode(pool.tokenizer, PROMPTS, special=True), pool.tokenizer.pad_token_id,
                    pool.device)


def _specs(pool):
    a, b, c = pool.names
    return [BraidSpec((a, b), (0, 1), "attention"),  # the pair bank's pair
            BraidSpec((b, a), (0, 1), "attention"),  # the same members, the other lead
            BraidSpec((a, b), (0, 1), "router"),  # the same pair, another strategy
            BraidSpec((a, b, c), (0, 1), "attention")]  # not a pair


def _shake(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)


def test_a_pair_bank_serves_only_its_pair_rows(pool):
    braid = BraidedLLM(pool)
    _shake(braid.banks, 0)
    ids, mask, pos = _inputs(pool)
    plan = Plan.from_specs(_specs(pool), pool.names, pool.depth)
    before = braid(ids, mask, pos, plan)
    bank = braid.add_pair_bank("attention", 0, 1)
    # A new pair bank is a copy of its strategy's bank: nothing changes yet.
    torch.testing.assert_close(braid(ids, mask, pos, plan), before)
    _shake(bank, 1)
    after = braid(ids, mask, pos, plan)
    real = mask.bool()
    assert not torch.allclose(after[0][real[0]], before[0][real[0]])
    for row in (1, 2, 3):
        torch.testing.assert_close(after[row][real[row]], before[row][real[row]])
    assert braid.pairs() == [("attention", 0, 1)]


def test_a_braid_with_pair_banks_saves_and_reloads_exactly(pool, tmp_path):
    braid = BraidedLLM(pool)
    _shake(braid.banks, 2)
    _shake(braid.add_pair_bank("router", 2, 0), 3)
    again = BraidedLLM.load(braid.save(tmp_path / "braid"), pool)
    assert again.pairs() == [("router", 2, 0)]
    ids, mask, pos = _inputs(pool)
    a, _, c = pool.names
    plan = Plan.from_specs([BraidSpec((c, a), (1,), "router", top_k=1)] * 2
                           + _specs(pool)[:2], pool.names, pool.depth)
    assert torch.equal(braid(ids, mask, pos, plan), again(ids, mask, pos, plan))


def test_a_pair_bank_needs_a_strategy_bank_and_two_members(pool):
    braid = BraidedLLM(pool, ("router",))
    with pytest.raises(EvoloraError, match="two different members"):
        braid.add_pair_bank("attention", 0, 1)
    with pytest.raises(EvoloraError, match="two different members"):
        braid.add_pair_bank("router", 1, 1)


@pytest.mark.parametrize("same_domain", [False, True])
def test_same_domain_pair_banks_go_to_the_familys_other_member(pool, monkeypatch, same_domain):
    """m0 and m2 both have the math domain (say two seeds' specialists); m1, of no domain, has
    more room beside m0, so it gets the pair bank unless only the family's members may join."""
    profiles = [replace(p, domain=d) for p, d in zip(pool.profiles, ("math", "general", "math"),
                                                     strict=True)]
    braid = BraidedLLM(ModelPool(pool.hosts, profiles))
    monkeypatch.setattr(pair_train, "joiner_room", lambda braid, lead, examples: {1: 0.5, 2: 0.1})
    config = FusionTrainConfig(pair_families=["math"], pair_joiners=1, pair_probe=4,
                               pair_steps=0)
    made = pair_train.train_pair_banks(braid, ["math"], [1], config, [1.0], [2], seed=0,
                                       fraction=0.4, same_domain=same_domain)
    assert [(m["lead"], m["joiner"]) for m in made] == [("m0", "m2" if same_domain else "m1")]
