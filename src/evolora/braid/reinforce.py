"""REINFORCE with a baseline for every head of the MetaBraider (Williams 1992).

loss = - sum_h mean(relevance_h * (r - b) * log pi_h)  - entropy * sum_h mean(H_h)
       - lead_entropy * mean(H_lead) + value * mean((V - r)^2)

The baseline b is the learned value V of the task, or, when every prompt of a batch was braided
several times, the mean reward of the prompt's other samples (leave-one-out, as in RLOO: Kool et
al. 2019). Prompts differ far more in difficulty than decisions differ in reward (most prompts are
solved by every model or by none), so a per-prompt baseline takes that difficulty out of the
advantage, and only prompts where decisions differ in outcome teach.

`lead_entropy` is an extra bonus on the lead model's entropy alone, which the trainer anneals to 0
over the first part of training: rewards are single 0/1 answers, so the first few lucky answers
of one member could otherwise fix a family's lead before the others were tried.

A head in `frozen` draws uniformly at random and never learns (the ablation of that head).

Online feedback (`learn_from_feedback`) keeps a window of recent episodes and takes
`feedback.updates` steps over it per feedback batch, each episode's policy term weighted by its
truncated importance weight (`feedback.py`).
"""

from __future__ import annotations

import torch

from evolora.braid.braider import HEADS, Decision, MetaBraider
from evolora.braid.config import FeedbackConfig
from evolora.braid.features import BraidInputs
from evolora.braid.feedback import FeedbackWindow


class Learner:
    """Owns the braider's optimiser; `update` is one policy-gradient step on measured rewards."""

    def __init__(self, braider: MetaBraider, lr: float, entropy: float = 0.01,
                 value: float = 0.5, feedback: FeedbackConfig | None = None) -> None:
        self.braider = braider
        self.entropy, self.value = entropy, value
        self.feedback = feedback or FeedbackConfig()
        self.window = FeedbackWindow(self.feedback.window)
        # feedback episodes per (family slot, lead model): what a family has tried
        self.tried = torch.zeros(braider.config.max_families, len(braider.members),
                                 device=braider.skill_scale.device)
        self.optimiser = torch.optim.Adam(braider.parameters(), lr=lr)

    def update(self, decision: Decision, rewards: torch.Tensor,
               baseline: torch.Tensor | None = None, lead_entropy: float = 0.0,
               weights: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        """One step from decisions sampled with gradients on and their rewards (B,), against
        `baseline` (B,) when given, else the learned value; `lead_entropy` weighs an extra
        entropy bonus on the lead model; `weights` (per head, (B,)) scale each episode's
        policy term (importance weights of replayed episodes)."""
        rewards = rewards.to(decision.value.device)
        base = decision.value if baseline is None else baseline.to(rewards.device)
        advantage = (rewards - base).detach()
        relevant = self.braider.relevance(decision)
        policy = torch.zeros((), device=rewards.device)
        bonus = torch.zeros((), device=rewards.device)
        for head in HEADS:
            if head in self.braider.frozen:
                continue
            weight = relevant[head] if weights is None else relevant[head] * weights[head]
            policy = policy - (weight * advantage * decision.logp[head]).mean()
            bonus = bonus + decision.entropy[head].mean()
        lead_bonus = torch.zeros((), device=rewards.device)
        if "models" not in self.braider.frozen:
            lead_bonus = decision.entropy["lead"].mean()
        value_loss = ((decision.value - rewards) ** 2).mean()
        loss = (policy - self.entropy * bonus - lead_entropy * lead_bonus
                + self.value * value_loss)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        stats = {"reward/mean": float(rewards.mean()), "loss/value": float(value_loss.detach()),
                 "loss/policy": float(policy.detach())}
        for head in HEADS:
            stats[f"entropy/{head}"] = float(decision.entropy[head].detach().mean())
            stats[f"relevant/{head}"] = float(relevant[head].mean())
        stats["entropy/lead"] = float(decision.entropy["lead"].detach().mean())
        return stats

    def learn_from_feedback(self, inputs: BraidInputs, decision: Decision,
                            rewards: torch.Tensor) -> dict[str, float]:
        """Online learning from decisions already taken (e.g. in production) and their rewards:
        kept in the feedback window, which `feedback.updates` steps then learn from; the last
        step's statistics."""
        self.window.add(inputs, decision, rewards)
        rows = (inputs.family.to(self.tried.device), decision.lead.to(self.tried.device))
        self.tried.index_put_(rows, torch.ones(len(rows[0]), device=self.tried.device),
                              accumulate=True)
        with torch.enable_grad():
            for _ in range(self.feedback.updates):
                scored = self.braider.decide(self.window.inputs, forced=self.window.decision)
                weights = self.window.weights(scored, self.feedback.clip)
                baseline = (self.window.baseline(scored.value)
                            if self.feedback.baseline == "window" else None)
                stats = self.update(scored, self.window.rewards, baseline, weights=weights)
        return stats

    def exploration(self, inputs: BraidInputs) -> torch.Tensor:
        """(B, M) lead probability mass for `MetaBraider.decide(explore=...)`: per row a share
        `explore / (1 + n / explore_decay)` of its family's decisions (n: the family's feedback
        episodes so far), spread evenly over the members that family has tried least."""
        tried = self.tried.to(inputs.family.device)[inputs.family]  # (B, M)
        least = (tried == tried.min(-1, keepdim=True).values).float()
        seen = tried.sum(-1, keepdim=True)
        share = self.feedback.explore / (1 + seen / self.feedback.explore_decay)
        return share * least / least.sum(-1, keepdim=True)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The optimiser's tensors (flat names) with the feedback counts, and its JSON-ready
        hyper-parameters."""
        tensors, meta = optimiser_state(self.optimiser)
        return tensors | {"feedback.tried": self.tried.clone()}, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Restore what `state` returned."""
        load_optimiser_state(self.optimiser, tensors, meta)
        if "feedback.tried" in tensors:
            self.tried.copy_(tensors["feedback.tried"])


def leave_one_out(rewards: torch.Tensor, group: int) -> torch.Tensor:
    """Per row, the mean reward of the other rows of its group (rows come in consecutive groups
    of `group` samples of one prompt), (B,)."""
    grouped = rewards.view(-1, group)
    return ((grouped.sum(-1, keepdim=True) - grouped) / (group - 1)).flatten()


def optimiser_state(optimiser: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """A torch optimiser's tensors (flat names `opt.<param>.<key>`) and its JSON-ready groups."""
    full = optimiser.state_dict()
    tensors = {f"opt.{i}.{k}": v for i, s in full["state"].items() for k, v in s.items()}
    return tensors, {"param_groups": full["param_groups"]}


def load_optimiser_state(optimiser: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict) -> None:
    """Restore what `optimiser_state` returned (tensors not named `opt.*` are ignored)."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimiser.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
