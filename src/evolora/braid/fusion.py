"""Fusion strategies: how the hidden states of several models at one point are mixed.

A strategy is a module registered by name whose `mix` returns, for every row and token, a mixing
matrix W (B, T, M, M): model i's fused state is sum_j W[i, j] h_j over the selected models only
(W's rows sum to 1 and put no weight on unselected models). Every strategy adds a learned per-lead
score to each model (`lead_pair[slot, lead, j]`, starting at `LEAD_BIAS` for the lead itself and 0
for the others): a braid starts out close to its lead alone, so a model joining the lead can only
move it as far as training on (lead, member) rows found worth it. One strategy module holds
parameters for every fusion slot: slot l < L is "after decoder layer l", slot L is the output
(the mixture of the models' next-token distributions). A new strategy is one class with
`@register_strategy`.

Output-level baselines (`OUTPUT_ONLY`) fuse no hidden states and have no parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from evolora.errors import EvoloraError

STRATEGIES: dict[str, type[FusionStrategy]] = {}
OUTPUT_ONLY = ("logit_average", "product_of_experts")
LEAD_BIAS = 2.0  # with one joiner, the lead starts with softmax([2, 0]) = 0.88 of the weight


def register_strategy(name: str) -> Callable[[type], type]:
    """Register a layer-fusion strategy class under `name`."""

    def add(cls: type) -> type:
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return add


def strategy_names() -> tuple[str, ...]:
    """Every strategy a decision may name: layer fusion first, then the output-level baselines."""
    return (*STRATEGIES, *OUTPUT_ONLY)


def check_strategy(name: str) -> str:
    """`name` if it is a known strategy, else one EvoloraError sentence listing the valid ones."""
    if name not in strategy_names():
        raise EvoloraError(
            f"Unknown fusion strategy {name!r}; choose one of {', '.join(strategy_names())}."
        )
    return name


class FusionStrategy(nn.Module):
    """Base: parameters for `slots` fusion points over `models` models in a `dim`-wide space."""

    name = "base"

    def __init__(self, models: int, slots: int, dim: int) -> None:
        super().__init__()
        self.models, self.slots, self.dim = models, slots, dim
        self.lead_pair = nn.Parameter(LEAD_BIAS * torch.eye(models).repeat(slots, 1, 1))

    def lead_scores(self, slot: int, lead: torch.Tensor) -> torch.Tensor:
        """Each model's learned score under each row's lead (B, M)."""
        return self.lead_pair[slot].index_select(0, lead)

    def mix(self, states, select, slot: int, temperature, top_k, lead) -> torch.Tensor:
        """Mixing matrices (B, T, M, M) for states (B, T, M, D), selection (B, M) bool,
        per-row temperature (B,), router top-k (B,) long and lead model (B,) long."""
        raise NotImplementedError


def _masked_softmax(scores: torch.Tensor, allowed: torch.Tensor, temperature) -> torch.Tensor:
    """Softmax over the last axis restricted to `allowed`, at a per-row temperature (B,)."""
    shape = (-1,) + (1,) * (scores.dim() - 1)
    scores = scores / temperature.view(shape).to(scores.dtype)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1)


@register_strategy("learned_weighted")
class LearnedWeighted(FusionStrategy):
    """One learned weight per model and slot: every model's fused state is the same weighted
    average of the selected models' states."""

    def __init__(self, models: int, slots: int, dim: int) -> None:
        super().__init__(models, slots, dim)
        self.logits = nn.Parameter(torch.zeros(slots, models))

    def mix(self, states, select, slot, temperature, top_k, lead):
        b, t, m, _ = states.shape
        scores = self.logits[slot] + self.lead_scores(slot, lead)
        weights = _masked_softmax(scores, select, temperature)  # (B, M)
        return weights[:, None, None, :].expand(b, t, m, m)


@register_strategy("attention")
class ModelAttention(FusionStrategy):
    """Cross-attention from each model to the others at the same token: model i's query scores
    every selected model j's key; the fused state is the attention-weighted sum of their states."""

    def __init__(self, models: int, slots: int, dim: int, head: int = 32) -> None:
        super().__init__(models, slots, dim)
        self.query = nn.Parameter(torch.randn(slots, dim, head) * 0.02)
        self.key = nn.Parameter(torch.randn(slots, dim, head) * 0.02)
        self.model_key = nn.Parameter(torch.zeros(slots, models, head))
        self.head = head

    def mix(self, states, select, slot, temperature, top_k, lead):
        normed = nn.functional.layer_norm(states, states.shape[-1:])
        q = normed @ self.query[slot]  # (B, T, M, h)
        k = normed @ self.key[slot] + self.model_key[slot]  # (B, T, M, h)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head)  # (B, T, M, M)
        scores = scores + self.lead_scores(slot, lead)[:, None, None, :]
        return _masked_softmax(scores, select[:, None, None, :], temperature)


@register_strategy("router")
class TokenRouter(FusionStrategy):
    """Token-level gating: a learned gate scores each selected model's state at each token, keeps
    the top-k models (per row k) and mixes their states by the softmax of the kept scores."""

    def __init__(self, models: int, slots: int, dim: int) -> None:
        super().__init__(models, slots, dim)
        self.gate = nn.Parameter(torch.zeros(slots, dim))
        self.model_bias = nn.Parameter(torch.zeros(slots, models))

    def mix(self, states, select, slot, temperature, top_k, lead):
        b, t, m, _ = states.shape
        normed = nn.functional.layer_norm(states, states.shape[-1:])
        scores = normed @ self.gate[slot] + self.model_bias[slot]  # (B, T, M)
        scores = scores + self.lead_scores(slot, lead)[:, None, :]
        allowed = select[:, None, :].expand(b, t, m)
        ranked = scores.masked_fill(~allowed, float("-inf"))
        rank = ranked.argsort(-1, descending=True).argsort(-1)  # 0 = best model at this token
        kept = allowed & (rank < top_k.view(-1, 1, 1))
        gates = _masked_softmax(scores, kept, temperature)  # (B, T, M)
        return gates[:, :, None, :].expand(b, t, m, m)


def combine_outputs(
    strategy: str, logprobs: torch.Tensor, logits: torch.Tensor, select: torch.Tensor,
    weights: torch.Tensor | None,
) -> torch.Tensor:
    """Next-token log-probabilities (B, T, V) of the braid from each model's (B, T, M, V).

    Layer-fusion strategies mix the distributions with `weights` (B, T, M); `logit_average`
    averages the selected models' logits; `product_of_experts` adds their log-probabilities.
    """
    sel = select[:, None, :, None]
    if strategy == "logit_average":
        mean = (logits * sel).sum(2) / select.sum(-1).clamp(min=1)[:, None, None]
        return torch.log_softmax(mean, dim=-1)
    if strategy == "product_of_experts":
        return torch.log_softmax((logprobs * sel).sum(2), dim=-1)
    log_w = torch.log(weights.clamp(min=1e-30)).masked_fill(~select[:, None, :], float("-inf"))
    return torch.logsumexp(logprobs + log_w[..., None], dim=2)
