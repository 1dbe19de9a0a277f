"""The price of a braid: compute per token as a share of the full pool, latency, and the reward.

compute = (FLOPs per token of the selected models + fusion FLOPs) / FLOPs of every model alone;
latency = (FLOPs of the slowest selected model / slowest in the pool) x (1 + sync_cost x fused
layers): the models run side by side, and every fusion layer waits for all of them;
reward = score - lam * compute - over * (compute - budget)+ - over * (latency - limit)+.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from evolora.braid.config import RewardConfig
from evolora.braid.fusion import STRATEGIES
from evolora.braid.plan import Plan
from evolora.braid.pool import ModelProfile


def compute_share(plan: Plan, profiles: Sequence[ModelProfile]) -> torch.Tensor:
    """Compute per token of each row's braid as a share of the whole pool run alone, (B,)."""
    device = plan.models.device
    cost = torch.tensor([p.cost_per_token for p in profiles], device=device)
    width = max(p.hidden for p in profiles)
    chosen = plan.models.float()
    n = chosen.sum(-1)
    fused = _fused_layers(plan)
    # Per fused layer: the mixing matrix product (2 M^2 D) and the feedback (4 M D) FLOPs.
    fusion = fused * (2 * n * n * width + 4 * n * width)
    return ((chosen * cost).sum(-1) + fusion) / cost.sum()


def latency_share(plan: Plan, profiles: Sequence[ModelProfile], sync_cost: float) -> torch.Tensor:
    """Latency per token relative to the slowest member alone, (B,)."""
    cost = torch.tensor([p.cost_per_token for p in profiles], device=plan.models.device)
    slowest = (plan.models.float() * cost).amax(-1) / cost.max()
    return slowest * (1 + sync_cost * _fused_layers(plan))


def _fused_layers(plan: Plan) -> torch.Tensor:
    multi = plan.models.sum(-1) > 1
    hidden = plan.strategy < len(STRATEGIES)
    return plan.layers.float().sum(-1) * (multi & hidden).float()


def reward(score: torch.Tensor, plan: Plan, profiles: Sequence[ModelProfile],
           budget: torch.Tensor, limit: torch.Tensor, config: RewardConfig
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reward, compute share, latency share) per row."""
    compute = compute_share(plan, profiles)
    latency = latency_share(plan, profiles, config.sync_cost)
    value = (score - config.lam * compute - config.over * (compute - budget).clamp(min=0)
             - config.over * (latency - limit).clamp(min=0))
    return value, compute, latency
