"""MetaBraider on a toy bandit whose best decision per family is known: every head gets gradient,
learns its right choice, and loses entropy; frozen heads stay random; save/load is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evolora.braid.braider import HEADS, MetaBraider
from evolora.braid.config import BraiderConfig, TrainConfig
from evolora.braid.explain import forward_with_explanation
from evolora.braid.features import encode_tasks
from evolora.braid.fusion import strategy_names
from evolora.braid.pool import ModelProfile
from evolora.braid.reinforce import Learner, leave_one_out
from evolora.braid.trainer import lead_entropy
from evolora.tasks import Example

MEMBERS = ["a", "b", "c", "d"]
PROFILES = [ModelProfile(n, "hf", n, params=1000, layers=3, hidden=16, cost_per_token=2000.0)
            for n in MEMBERS]
# family -> (models, layers, strategy, temperature index, top-k index): the bandit's best arm.
BEST = {"math": ({1, 2}, {0, 2}, "router", 1, 1), "logic": ({0, 3}, {1}, "router", 2, 0)}


def _tasks(rng, n):
    fams = rng.choice(list(BEST), size=n)
    return [Example(f"{f}: 1 2 3 =", "6", str(f), int(rng.integers(1, 4)), {}) for f in fams]


def _reward(decision, examples):
    """Partial credit per head, so each head's right choice is worth finding on its own."""
    out = []
    router = strategy_names().index("router")
    for row, ex in enumerate(examples):
        models, layers, _, temp, k = BEST[ex.family]
        picked = {i for i, on in enumerate(decision.models[row].tolist()) if on}
        fused = {i for i, on in enumerate(decision.layers[row].tolist()) if on}
        r = 0.3 * sum((i in picked) == (i in models) for i in range(4)) / 4
        r += 0.2 * (int(decision.strategy[row]) == router)
        r += 0.2 * sum((i in fused) == (i in layers) for i in range(3)) / 3
        r += 0.15 * (int(decision.temperature[row]) == temp)
        r += 0.15 * (int(decision.top_k[row]) == k)
        out.append(r)
    return torch.tensor(out)


def _braider(seed=0):
    torch.manual_seed(seed)
    return MetaBraider(MEMBERS, 3, BraiderConfig(width=32, depth=1), list(BEST))


def _inputs(braider, examples):
    return encode_tasks(examples, PROFILES, braider.slots(), [1.0] * len(examples),
                        [2.0] * len(examples), "cpu")


def _train(braider, updates=250, seed=0):
    learner = Learner(braider, lr=1e-2, entropy=0.001)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(updates):
        examples = _tasks(rng, 32)
        decision = braider.decide(_inputs(braider, examples), generator=gen)
        history.append(learner.update(decision, _reward(decision, examples)))
    return history


def test_every_head_receives_gradient():
    braider = _braider()
    examples = _tasks(np.random.default_rng(1), 32)
    gen = torch.Generator().manual_seed(0)
    decision = braider.decide(_inputs(braider, examples), generator=gen)
    rewards = _reward(decision, examples)
    relevant = braider.relevance(decision)
    heads = {"models": braider.model_head, "layers": braider.layer_head,
             "strategy": braider.strategy_head, "temperature": braider.temperature_head,
             "top_k": braider.top_k_head}
    for name in HEADS:
        braider.zero_grad()
        (-(relevant[name] * (rewards - rewards.mean()) * decision.logp[name]).mean()).backward(
            retain_graph=True)
        assert heads[name].weight.grad.abs().sum() > 0, f"head {name} got no gradient"


@pytest.mark.slow
def test_every_head_learns_the_right_choice_per_family():
    braider = _braider()
    history = _train(braider)
    for name in HEADS:
        early = np.mean([h[f"entropy/{name}"] for h in history[:10]])
        late = np.mean([h[f"entropy/{name}"] for h in history[-10:]])
        assert late < 0.5 * early, f"{name} entropy {early:.3f} -> {late:.3f}"
    assert np.mean([h["reward/mean"] for h in history[-10:]]) > np.mean(
        [h["reward/mean"] for h in history[:10]]) + 0.2
    for family, (models, layers, strategy, temp, k) in BEST.items():
        ex = [Example(f"{family}: 1 2 3 =", "6", family, 2, {})]
        d = braider.decide(_inputs(braider, ex), greedy=True)
        assert {i for i, on in enumerate(d.models[0].tolist()) if on} == models
        assert {i for i, on in enumerate(d.layers[0].tolist()) if on} == layers
        assert strategy_names()[int(d.strategy[0])] == strategy
        assert (int(d.temperature[0]), int(d.top_k[0])) == (temp, k)


def test_frozen_head_stays_uniform():
    braider = _braider()
    braider.frozen = {"strategy"}
    _train(braider, updates=30)
    ex = [Example("math: 1 2 3 =", "6", "math", 2, {})]
    probs = torch.softmax(braider.logits(_inputs(braider, ex))["strategy"], -1)
    torch.testing.assert_close(probs, torch.full_like(probs, 1 / probs.shape[-1]))


def test_explanation_and_save_load(tmp_path):
    braider = _braider()
    _train(braider, updates=40)
    ex = [Example("math: 1 2 3 =", "6", "math", 2, {})]
    _, explanation = forward_with_explanation(braider, _inputs(braider, ex))
    assert [e.head for e in explanation] == list(HEADS)
    assert all(0 < e.probability <= 1 and e.drivers for e in explanation)
    assert "family" in {name for e in explanation for name, _ in e.drivers}
    braider.save(tmp_path / "b")
    again = MetaBraider.load(tmp_path / "b")
    x = _inputs(braider, ex)
    for k, v in braider.logits(x).items():
        assert torch.equal(v, again.logits(x)[k])


def test_lead_routes_each_family_to_its_specialist_alone():
    """A pool where one member per family answers and every extra model costs: the braider starts
    near one model per prompt and learns to send each family to its own member, alone."""
    own = {"math": 2, "logic": 0}
    braider = _braider(1)
    learner = Learner(braider, lr=2e-2, entropy=0.001)
    rng, gen = np.random.default_rng(1), torch.Generator().manual_seed(1)
    first = braider.decide(_inputs(braider, _tasks(rng, 64)), generator=gen)
    assert (first.models.sum(-1) == 1).float().mean() > 0.5
    for _ in range(60):
        examples = _tasks(rng, 32)
        d = braider.decide(_inputs(braider, examples), generator=gen)
        right = torch.tensor([float(d.models[r, own[e.family]]) for r, e in enumerate(examples)])
        learner.update(d, right - 0.2 * (d.models.sum(-1) - 1))
    for family, member in own.items():
        d = braider.decide(_inputs(braider, [Example(f"{family}: 1 =", "1", family, 2, {})]),
                           greedy=True)
        assert int(d.lead[0]) == member and d.models[0].tolist() == [
            i == member for i in range(len(MEMBERS))]


POOL6 = ["host", "s0", "s1", "s2", "s3", "s4"]
FAMILIES5 = ["math", "logic", "sorting", "sequence", "json_repair"]


def test_lead_routes_five_families_past_a_generalist():
    """Five families, six members, 0/1 rewards: each family's own specialist answers 70 % of its
    prompts, a generalist 30 % of every family's, the rest 10 %. Sending most families to the
    generalist is the trap the head fell into when the family reached the member scores only
    through attention (without the route head, 3 seeds of 3 fail); with the task's own score per
    member and the lead's early entropy bonus as the trainer anneals it, every family's greedy
    lead is its specialist after 60 updates of 8 prompts x 4."""
    torch.manual_seed(0)
    profiles = [ModelProfile(n, "hf", n, params=1000, layers=3, hidden=16, cost_per_token=2000.0)
                for n in POOL6]
    braider = MetaBraider(POOL6, 3, BraiderConfig(width=32, depth=1), FAMILIES5)
    learner = Learner(braider, lr=1e-2)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    chance = torch.full((len(FAMILIES5), len(POOL6)), 0.1)
    chance[:, 0] = 0.3
    chance[torch.arange(5), torch.arange(1, 6)] = 0.7

    def inputs(examples):
        return encode_tasks(examples, profiles, braider.slots(), [1.0] * len(examples),
                            [2.0] * len(examples), "cpu")

    config = TrainConfig()
    for update in range(60):
        fams = rng.integers(5, size=8).repeat(4)  # 8 prompts, 4 decisions each
        examples = [Example(f"{FAMILIES5[f]}: 1 2 =", "3", FAMILIES5[f], 2, {}) for f in fams]
        d = braider.decide(inputs(examples), generator=gen)
        hit = (torch.rand(32, generator=gen) < chance[torch.as_tensor(fams), d.lead]).float()
        rewards = hit - 0.1 * (d.models.sum(-1) - 1)
        learner.update(d, rewards, leave_one_out(rewards, 4), lead_entropy(config, update / 60))
    examples = [Example(f"{f}: 1 2 =", "3", f, 2, {}) for f in FAMILIES5]
    assert braider.decide(inputs(examples), greedy=True).lead.tolist() == [1, 2, 3, 4, 5]


def test_joining_depends_on_the_lead():
    """Member 3 joining pays under leads 0 and 1, and staying out pays under lead 2 (every lead
    is worth the same, and the family says nothing; a strong lead entropy bonus keeps every lead
    tried): the join head learns it per lead, which a join score blind to the lead cannot."""
    braider = _braider(2)
    learner = Learner(braider, lr=5e-3, entropy=0.001)
    gen = torch.Generator().manual_seed(2)
    examples = [Example("math: 1 2 3 =", "6", "math", 2, {})] * 64
    x = _inputs(braider, examples)
    for _ in range(60):
        d = braider.decide(x, generator=gen)
        right = (d.lead == 3) | (d.models[:, 3] == (d.lead != 2))
        learner.update(d, 0.5 * right.float(), lead_entropy=1.0)
    join = torch.sigmoid(braider.logits(x)["join"][0, :, 3])
    assert join[0] > 0.5 and join[1] > 0.5 and join[2] < 0.2, join


def test_lead_entropy_bonus_keeps_the_lead_exploring():
    """With one arm slightly better, the extra bonus on the lead's entropy keeps the lead's
    distribution wider than training without it, and leaves the other heads' bonus unchanged."""
    ends = []
    for bonus in (0.0, 0.2):
        braider = _braider(3)
        learner = Learner(braider, lr=2e-2, entropy=0.0)
        gen = torch.Generator().manual_seed(3)
        x = _inputs(braider, [Example("math: 1 =", "1", "math", 2, {})] * 32)
        for _ in range(40):
            d = braider.decide(x, generator=gen)
            stats = learner.update(d, 0.1 * (d.lead == 1).float(), lead_entropy=bonus)
        ends.append(stats["entropy/lead"])
    assert ends[1] > ends[0] + 0.2, ends


def test_skill_prior_starts_the_lead_at_the_best_measured_member_and_rewards_override_it():
    """With members' measured skill in their profiles, an untrained braider leads each family
    with its most skilled member (without the prior: with no such pull); when rewards say another
    member is better, REINFORCE moves the lead there."""
    skill = {"math": [0.2, 0.3, 0.7, 0.1], "logic": [0.6, 0.2, 0.1, 0.3]}
    profiles = [ModelProfile(n, "hf", n, params=1000, layers=3, hidden=16, cost_per_token=2000.0,
                             skill={f: s[i] for f, s in skill.items()})
                for i, n in enumerate(MEMBERS)]
    examples = [Example(f"{f}: 1 2 =", "3", f, 2, {}) for f in BEST]

    def inputs(braider, examples):
        return encode_tasks(examples, profiles, braider.slots(), [1.0] * len(examples),
                            [2.0] * len(examples), "cpu")

    leads = {}
    for prior in (0.0, 10.0):
        torch.manual_seed(4)
        braider = MetaBraider(MEMBERS, 3, BraiderConfig(width=32, depth=1, skill_prior=prior),
                              list(BEST))
        probs = torch.softmax(braider.logits(inputs(braider, examples))["models"], -1)
        leads[prior] = probs[torch.arange(2), torch.tensor([2, 0])]
    assert (leads[10.0] > 0.8).all() and (leads[0.0] < 0.5).all(), leads
    truly = {"math": 1, "logic": 3}  # the measured skill is wrong: these members answer
    learner = Learner(braider, lr=2e-2, entropy=0.001)
    rng, gen = np.random.default_rng(4), torch.Generator().manual_seed(4)
    for update in range(60):
        batch = _tasks(rng, 32)
        d = braider.decide(inputs(braider, batch), generator=gen)
        right = torch.tensor([float(int(d.lead[r]) == truly[e.family])
                              for r, e in enumerate(batch)])
        learner.update(d, right, lead_entropy=lead_entropy(TrainConfig(), update / 60))
    d = braider.decide(inputs(braider, examples), greedy=True)
    assert d.lead.tolist() == [truly[f] for f in BEST]
