"""Agency: goals that steer attention and logits, attention foci, and measured goal progress.

Goals are vectors in the hidden space: `intrinsic_goals` learned ones G (trained with the model) and
up to `max_goals` explicit ones set by `create_goal` (the mean embedding of the goal's text), which
get an `explicit_priority` bonus. Token t picks its goal mixture by attention over the goals,

    g_t = Σ_m softmax_m( (W_q x_t)·G_m / √D + priority_m ) G_m,

and scores each position's salience as a mix of goal relevance and novelty (weight w =
`novelty_weight`):

    σ_t = (1 − w) cos(W_r x_t, g_t) + w (1 − cos(x_t, mean_(s<t) x_s)).

σ_j biases every attention score towards key j (the γ_h σ_j term of attention.py); α g_t is added
to the final hidden state, i.e. α E g_t to the logits through the tied output embedding. The
`max_foci` most salient positions are the attention foci; goal progress is the cosine between the
mean final hidden state of the generated tokens and the goal. Cost per token: one D×D projection
(W_r) and O(M·D) for M goals (the scores as x·(G_m W_q), so W_q x is never formed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Goal:
    """An explicit goal: its description, vector and latest measured progress in [0, 1]."""

    description: str
    goal_type: str
    vector: torch.Tensor
    progress: float = 0.0
    achieved: bool = False


@dataclass(frozen=True)
class Focus:
    """An attention focus: a position of the context, its token and its salience."""

    type: str
    target: str
    position: int
    intensity: float


class AgencyLayer(nn.Module):
    """Goal mixture, salience and goal bias; see the module docstring."""

    def __init__(self, dim: int, intrinsic: int, max_goals: int, novelty_weight: float,
                 priority: float) -> None:
        super().__init__()
        self.dim, self.novelty_weight, self.priority = dim, novelty_weight, priority
        self.goals = nn.Parameter(torch.randn(intrinsic, dim) * 0.02)
        self.query = nn.Linear(dim, dim, bias=False)
        self.relevance = nn.Linear(dim, dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(0.1))
        self.max_goals = max_goals
        self.explicit: torch.Tensor | None = None  # (n, D) set by set_goals; not a weight

    def set_goals(self, vectors: list[torch.Tensor]) -> None:
        """Replace the explicit goals by the last max_goals of `vectors` (each (D,))."""
        vectors = vectors[-self.max_goals :]
        self.explicit = torch.stack([v.detach().float() for v in vectors]) if vectors else None

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor, past: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(salience (B, T), goal mixture (B, T, D), x to append to the history (B, T, D)).
        valid (B, S) covers the past tokens then these; past (B, S - T, D) their x."""
        goals = self.goals  # (M, D)
        if self.explicit is not None:
            goals = torch.cat([goals, self.explicit.to(goals)], dim=0)
        bonus = torch.zeros(goals.shape[0], device=x.device, dtype=x.dtype)
        bonus[self.goals.shape[0] :] = self.priority
        # (W_q x)·G_m = x·(G_m W_q): M·D per token instead of the D² of projecting x first.
        keys = goals.to(x.dtype) @ self.query.weight.to(x.dtype)  # (M, D)
        scores = x @ keys.t() / math.sqrt(self.dim) + bonus  # (B, T, M)
        mixture = torch.softmax(scores, dim=-1) @ goals.to(x.dtype)  # (B, T, D)
        relevance = F.cosine_similarity(self.relevance(x), mixture, dim=-1)  # (B, T)
        t = x.shape[1]
        new_valid = valid[:, valid.shape[1] - t :, None].to(x.dtype)
        total = (x * new_valid).cumsum(1) - x * new_valid
        count = new_valid.cumsum(1) - new_valid
        if past is not None and past.shape[1] > 0:
            past_valid = valid[:, : valid.shape[1] - t, None].to(x.dtype)
            total = total + (past * past_valid).sum(1, keepdim=True)
            count = count + past_valid.sum(1, keepdim=True)
        novelty = 1 - F.cosine_similarity(x, total / count.clamp(min=1.0), dim=-1)
        novelty = torch.where(count.squeeze(-1) > 0, novelty, torch.ones_like(novelty))
        w = self.novelty_weight
        salience = (1 - w) * relevance + w * novelty
        return salience, mixture * self.logit_scale, x


def foci(salience: torch.Tensor, tokens: list[str], max_foci: int) -> list[Focus]:
    """The `max_foci` most salient positions of a sequence (salience (T,), T token strings)."""
    k = min(max_foci, salience.shape[0])
    top = torch.topk(salience.float(), k)
    return [
        Focus("token", tokens[i], int(i), float(v))
        for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]


def progress(hidden: torch.Tensor, goal: torch.Tensor) -> float:
    """Goal progress in [0, 1]: cosine of the mean generated hidden state (N, D) and the goal."""
    if hidden.shape[0] == 0:
        return 0.0
    cos = F.cosine_similarity(hidden.float().mean(0), goal.float().to(hidden.device), dim=0)
    return float(cos.clamp(min=0.0))
