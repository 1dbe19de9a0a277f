"""The window of recent feedback episodes the `Learner` replays (online learning).

One policy-gradient step per batch of a few single-sample episodes learns a new family slowly:
each 0/1 answer moves the policy once and is thrown away. The window keeps the last `window`
episodes (inputs, the decision taken, its reward and its log-probability per head when taken), so
every feedback batch can take several steps over all of them. An episode taken under an older
policy is weighted by the ratio of its decision's probability now to then, per head and capped at
`clip` (truncated importance sampling, as in Retrace and V-trace: Munos et al. 2016, Espeholt et
al. 2018): the steps follow the current policy's gradient, and a decision the braider has since
made likelier stops being pushed harder than its own reward warrants.

Each kept episode is judged against the mean reward of the window's other episodes of its family
(`feedback.baseline: window`): the learned value of a family the braider never trained on is
untrained, so it can sit above or below all of that family's rewards and push every tried lead
the same way, which several steps per batch amplify (measured: `benchmarks/braid_learning.py
--few-shot-only`). Which members a family tries is widened by `Learner.exploration`.
"""

from __future__ import annotations

import torch

from evolora.braid.braider import HEADS, Decision
from evolora.braid.features import BraidInputs

_PICKS = ("models", "layers", "strategy", "temperature", "top_k", "lead")
_INPUTS = ("task", "family", "models", "budget", "latency")


class FeedbackWindow:
    """The last `size` feedback episodes: inputs, decisions, rewards, behaviour log-probs."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.inputs: BraidInputs | None = None
        self.decision: Decision | None = None
        self.rewards = torch.zeros(0)
        self.behaviour: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def add(self, inputs: BraidInputs, decision: Decision, rewards: torch.Tensor) -> None:
        """Append a batch (its decision's log-probs are the behaviour policy's), dropping the
        oldest episodes beyond the window."""
        picks = {k: getattr(decision, k).detach() for k in _PICKS}
        logp = {h: decision.logp[h].detach() for h in HEADS}
        rewards = rewards.detach().to(decision.lead.device)
        if self.decision is not None:
            picks = {k: torch.cat([getattr(self.decision, k), picks[k]]) for k in _PICKS}
            logp = {h: torch.cat([self.behaviour[h], logp[h]]) for h in HEADS}
            rewards = torch.cat([self.rewards, rewards])
            inputs = BraidInputs(*(torch.cat([getattr(self.inputs, k), getattr(inputs, k)])
                                   for k in _INPUTS))
        keep = slice(max(0, rewards.shape[0] - self.size), None)
        self.inputs = BraidInputs(*(getattr(inputs, k)[keep] for k in _INPUTS))
        self.decision = Decision(**{k: v[keep] for k, v in picks.items()}, logp={}, entropy={},
                                 value=torch.zeros_like(rewards[keep]))
        self.behaviour = {h: v[keep] for h, v in logp.items()}
        self.rewards = rewards[keep]

    def baseline(self, value: torch.Tensor) -> torch.Tensor:
        """Per kept episode, the mean reward of the other kept episodes of its family (the
        learned `value` (N,) where it is its family's only one)."""
        same = self.inputs.family[:, None] == self.inputs.family[None, :]
        same.fill_diagonal_(False)
        others = same.float().sum(-1)
        loo = (same.float() @ self.rewards) / others.clamp(min=1)
        return torch.where(others > 0, loo, value.detach())

    def weights(self, scored: Decision, clip: float) -> dict[str, torch.Tensor]:
        """Per head (N,): the truncated importance weight min(clip, pi_now / pi_then) of every
        kept episode, given the window's decisions re-scored by the current braider."""
        return {h: torch.exp(scored.logp[h].detach() - self.behaviour[h]).clamp(max=clip)
                for h in HEADS}
