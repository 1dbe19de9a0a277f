"""Each strategy's bank learns on a seeded problem with a known answer: in a pool of a trained
model and a random one, fusion should learn to follow the trained model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from braid_models import FAMILIES, tiny_host

from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FusionTrainConfig
from evolora.braid.fusion import STRATEGIES
from evolora.braid.fusion_train import leads_for, random_plan, train_bank, training_rows
from evolora.braid.generation import answer_logprobs
from evolora.braid.pair_train import train_pair_banks
from evolora.braid.plan import BraidSpec, Plan
from evolora.braid.pool import ModelPool, profile_of
from evolora.ecology.roles import Role, role_of
from evolora.hosts.generation import encode, target_logprobs
from evolora.tasks import TaskGrid

GRID = TaskGrid(FAMILIES, [1])


def _trained(tokenizer, steps=80):
    """A tiny host fitted to task answers by plain back-propagation."""
    host = tiny_host(tokenizer, 10, name="good")
    host.model.requires_grad_(True)
    opt = torch.optim.Adam(host.model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        ex = GRID.sample_batch(rng, 16, split="train")
        p = encode(tokenizer, [e.prompt for e in ex], special=True)
        t = encode(tokenizer, [e.answer + "\n" for e in ex], special=False)
        with torch.enable_grad():
            loss = -target_logprobs(host.model, p, t, tokenizer.pad_token_id, None).mean()
            opt.zero_grad()
            loss.backward()
        opt.step()
    host.model.requires_grad_(False)
    return host


@pytest.fixture(scope="module")
def good_and_random(tokenizer):
    hosts = [_trained(tokenizer), tiny_host(tokenizer, 11, name="random")]
    return ModelPool(hosts, [profile_of(h, h.name, "hf", h.name) for h in hosts])


def _score(braid, spec, examples):
    plan = Plan.repeat(spec, len(examples), braid.pool.names, braid.pool.depth)
    with torch.no_grad():
        return float(answer_logprobs(braid, [e.prompt for e in examples],
                                     [e.answer + "\n" for e in examples], plan).mean())


@pytest.mark.parametrize("strategy", ["learned_weighted", "attention", "router"])
def test_strategy_learns_to_follow_the_trained_model(good_and_random, strategy):
    pool = good_and_random
    braid = BraidedLLM(pool)
    holdout = GRID.sample_batch(np.random.default_rng(5), 48, split="holdout")
    # The random model leads: the bank starts out following it and must learn to follow the
    # trained model that joins it.
    spec = BraidSpec(("random", "good"), (0, 1), strategy, 1.0, 2)
    good = _score(braid, BraidSpec(("good",)), holdout)
    before = _score(braid, spec, holdout)
    assert before < good - 0.2  # leaning on the random model hurts: there is room
    config = FusionTrainConfig(steps=60, batch=16, lr=3e-2, model_keep=1.0, layer_keep=0.5)
    losses = train_bank(braid, strategy, GRID, config, [1.0], [2], seed=0)
    after = _score(braid, spec, holdout)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    # Most of the gap to the trained model closes (the answer: follow it).
    assert after > before + 0.7 * (good - before), (before, after, good)


def test_training_rows_are_pairs_around_the_best_lead(pool):
    """With pair_share 1 every row is its lead plus one other member; with lead_best 1 the lead
    is the member measured best on the row's family."""
    profiles = [replace(p, skill={"math": s, "logic": 1 - s})
                for p, s in zip(pool.profiles, (0.2, 0.9, 0.5), strict=True)]
    rng = np.random.default_rng(0)
    families = ["math", "logic"] * 20
    leads = leads_for(families, profiles, 1.0, rng)
    assert leads.tolist() == [1, 0] * 20
    config = FusionTrainConfig(pair_share=1.0, lead_best=1.0)
    plan = random_plan(leads, pool.size, pool.depth, "router", config, [1.0], [2], rng, "cpu")
    assert plan.models.sum(-1).tolist() == [2] * 40
    assert plan.models[torch.arange(40), plan.lead].all()
    assert plan.lead.tolist() == leads.tolist()
    assert plan.layers.any(-1).all()
    mixed = random_plan(leads, pool.size, pool.depth, "router",
                        FusionTrainConfig(pair_share=0.0, model_keep=1.0), [1.0], [2], rng, "cpu")
    assert mixed.models.all()  # not pairs: every other member joins at model_keep 1
    uniform = leads_for(families, profiles, 0.0, rng)
    assert len(set(uniform.tolist())) == 3


def test_banks_learn_on_the_prompts_their_config_names():
    """`prompts: select` draws only the braider's selection prompts (holdout), `learn` only the
    train split."""
    rng = np.random.default_rng(0)
    for prompts in ("learn", "select"):
        rows = training_rows(GRID, rng, 40, prompts, 0.4)
        assert {role_of(ex, 0.4) for ex in rows} == {Role(prompts)}


def test_pair_banks_learn_to_follow_a_joiner_with_room(good_and_random):
    """The random model is the math specialist (it leads); the trained model answers math
    prompts it misses, so it gets pair banks, which learn to follow it while the shared banks
    stay as they were."""
    pool = good_and_random
    profiles = [replace(p, domain="math" if p.name == "random" else "general")
                for p in pool.profiles]
    pool = ModelPool(pool.hosts, profiles)
    braid = BraidedLLM(pool)
    shared = {k: v.clone() for k, v in braid.banks.state_dict().items()}
    holdout = GRID.sample_batch(np.random.default_rng(5), 48, split="holdout")
    spec = BraidSpec(("random", "good"), (0, 1), "learned_weighted", 1.0, 2)
    good = _score(braid, BraidSpec(("good",)), holdout)
    before = _score(braid, spec, holdout)
    config = FusionTrainConfig(pair_families=["math", "sorting"], pair_joiners=1, pair_probe=48,
                               pair_steps=60, pair_lr=3e-2, batch=16, prompts="learn")
    made = train_pair_banks(braid, FAMILIES, [1], config, [1.0], [2], seed=0, fraction=0.4)
    assert made == [{"family": "math", "lead": "random", "joiner": "good",
                     "room": made[0]["room"]}] and made[0]["room"] > 0
    assert sorted(braid.pairs()) == [(s, 1, 0) for s in sorted(STRATEGIES)]
    after = _score(braid, spec, holdout)
    assert after > before + 0.7 * (good - before), (before, after, good)
    for k, v in braid.banks.state_dict().items():
        assert torch.equal(v, shared[k]), k
