"""Online learning from feedback: the replay window, its importance weights, and few-shot routing
of a family the braider never trained on, on a toy pool where the right member is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evolora.braid.braider import HEADS, MetaBraider
from evolora.braid.config import BraiderConfig, FeedbackConfig
from evolora.braid.features import encode_tasks
from evolora.braid.pool import ModelProfile
from evolora.braid.reinforce import Learner, leave_one_out
from evolora.tasks import Example

MEMBERS = ["host", "s0", "s1", "s2", "s3", "s4"]
PROFILES = [ModelProfile(n, "hf", n, params=1000, layers=3, hidden=16, cost_per_token=2000.0)
            for n in MEMBERS]
KNOWN = ["math", "logic", "sequence", "json_repair"]
NEW, RIGHT = "sorting", 3  # the new family, and the one member that answers it


def _inputs(braider, examples):
    return encode_tasks(examples, PROFILES, braider.slots(), [1.0] * len(examples),
                        [2.0] * len(examples), "cpu")


def _examples(family, n):
    return [Example(f"{family}: 3 1 2 =", "1 2 3", family, 2, {})] * n


def _trained(seed):
    """A braider that learned to send each known family to its own member (s0-s3 skip s2:
    the new family's member is never a known family's lead), with its learner."""
    torch.manual_seed(seed)
    braider = MetaBraider(MEMBERS, 3, BraiderConfig(width=32, depth=1), KNOWN)
    learner = Learner(braider, lr=1e-2)
    own = {"math": 1, "logic": 2, "sequence": 4, "json_repair": 5}
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for _ in range(40):
        examples = [ex for f in rng.choice(KNOWN, size=8) for ex in _examples(f, 4)]
        d = braider.decide(_inputs(braider, examples), generator=gen)
        right = torch.tensor([float(int(d.lead[r]) == own[e.family])
                              for r, e in enumerate(examples)])
        learner.update(d, right)
    return braider, learner


def _batches_to_route(seed, feedback: FeedbackConfig, batches=15):
    """Feedback batches of 4 single-sample episodes of the new family until the greedy lead is
    its member (None: not within `batches`)."""
    braider, trained = _trained(seed)
    learner = Learner(braider, lr=1e-2, feedback=feedback)
    learner.optimiser.load_state_dict(trained.optimiser.state_dict())
    braider.family_slot(NEW)
    gen = torch.Generator().manual_seed(100 + seed)
    probe = _inputs(braider, _examples(NEW, 1))
    for batch in range(1, batches + 1):
        x = _inputs(braider, _examples(NEW, 4))
        with torch.no_grad():
            d = braider.decide(x, generator=gen, explore=learner.exploration(x))
        learner.learn_from_feedback(x, d, (d.lead == RIGHT).float())
        if int(braider.decide(probe, greedy=True).lead[0]) == RIGHT:
            return batch
    return None


OLD = FeedbackConfig(updates=1, window=4, baseline="value", explore=0.0)  # one plain step


@pytest.mark.parametrize("baseline", ["value", "window"])
def test_one_step_over_a_window_of_one_batch_is_the_plain_update(baseline):
    """updates 1 with a window of one batch: the policy gradient of that batch against the
    learned value, or against the batch's other episodes of the family (the gradients are
    compared: Adam's first step turns float noise on a near-zero gradient into a full step)."""
    results = []
    for online in (True, False):
        braider, _ = _trained(0)
        feedback = FeedbackConfig(updates=1, window=4, baseline=baseline, explore=0.0)
        learner = Learner(braider, lr=1e-2, feedback=feedback)
        x = _inputs(braider, _examples("math", 4))
        d = braider.decide(x, generator=torch.Generator().manual_seed(5))
        rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
        if online:
            learner.learn_from_feedback(x, d, rewards)
        else:
            learner.update(d, rewards, None if baseline == "value" else leave_one_out(rewards, 4))
        results.append(torch.cat([p.grad.flatten() for p in braider.parameters()
                                  if p.grad is not None]))
    assert results[0].abs().sum() > 0
    torch.testing.assert_close(results[0], results[1], atol=1e-6, rtol=1e-4)


def test_window_keeps_the_last_episodes_and_weighs_them_by_their_ratio():
    braider, _ = _trained(1)
    learner = Learner(braider, lr=5e-2, feedback=FeedbackConfig(updates=3, window=6, clip=1.5))
    gen = torch.Generator().manual_seed(1)
    for _ in range(2):
        x = _inputs(braider, _examples("logic", 4))
        with torch.no_grad():
            d = braider.decide(x, generator=gen)
        learner.learn_from_feedback(x, d, (d.lead == 0).float())
    window = learner.window
    assert len(window) == 6 and window.inputs.task.shape[0] == 6
    torch.testing.assert_close(window.decision.lead[-4:], d.lead)
    scored = braider.decide(window.inputs, forced=window.decision)
    weights = window.weights(scored, 1.5)
    for head in HEADS:
        ratio = torch.exp(scored.logp[head].detach() - window.behaviour[head])
        torch.testing.assert_close(weights[head], ratio.clamp(max=1.5))
    assert not torch.allclose(weights["models"], torch.ones(6))  # the policy moved since
    torch.testing.assert_close(window.baseline(torch.full((6,), 9.0)),
                               (window.rewards.sum() - window.rewards) / 5)


def test_exploration_goes_to_the_members_a_family_tried_least():
    braider, _ = _trained(2)
    learner = Learner(braider, lr=1e-2, feedback=FeedbackConfig(explore=0.5, explore_decay=6))
    braider.family_slot(NEW)
    x = _inputs(braider, _examples(NEW, 3))
    forced = braider.decide(x, greedy=True)
    forced.lead = torch.tensor([1, 1, 2])
    learner.learn_from_feedback(x, forced, torch.zeros(3))
    mass = learner.exploration(x)[0]
    share = 0.5 / (1 + 3 / 6)  # three feedback episodes of the family so far
    torch.testing.assert_close(mass, torch.tensor([1, 0, 0, 1, 1, 1]) * share / 4)
    untried = learner.exploration(_inputs(braider, _examples("math", 1)))
    assert float(untried.sum()) == pytest.approx(0.5)  # no feedback yet: the full share
    # sampled leads follow the mixture: the policy, and the share over the least-tried members
    many = _inputs(braider, _examples(NEW, 2000))
    gen = torch.Generator().manual_seed(2)
    explored = braider.decide(many, generator=gen, explore=learner.exploration(many))
    others = torch.tensor([0, 3, 4, 5])
    policy = torch.softmax(braider.logits(many)["models"], -1)[0, others].sum()
    rate = torch.isin(explored.lead, others).float().mean()
    assert abs(rate - ((1 - share) * policy + share)) < 0.04, (rate, policy)
    probs = torch.softmax(braider.logits(many)["models"], -1)
    mixture = (1 - share) * probs + learner.exploration(many)
    torch.testing.assert_close(explored.logp["models"] - braider.decide(
        many, forced=explored).logp["models"], torch.log(mixture.gather(
            1, explored.lead[:, None])[:, 0]) - torch.log(probs.gather(
                1, explored.lead[:, None])[:, 0]))


def test_default_feedback_routes_a_new_family_in_fewer_batches():
    """A family the braider never trained on, one member answering it, 4 single-sample episodes
    per feedback batch: the default feedback (replay, the window's baseline, exploration) routes
    it to its member on every seed, in far fewer batches than one plain step per batch."""
    old = [_batches_to_route(seed, OLD) for seed in range(4)]
    new = [_batches_to_route(seed, FeedbackConfig()) for seed in range(4)]
    assert None not in new and sum(new) * 2 < sum(n or 16 for n in old), (old, new)


def test_exploration_finds_the_member_a_collapsed_family_never_tries():
    """Seed 2's braider leads the new family with one wrong member at probability ~1: without
    exploration no feedback ever reaches the right one, with it the lead moves there."""
    assert _batches_to_route(2, FeedbackConfig(explore=0.0)) is None
    assert _batches_to_route(2, FeedbackConfig()) is not None
