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
        self._keys_cache: tuple | None = None

    def set_goals(self, vectors: list[torch.Tensor]) -> None:
        """Replace the explicit goals by the last max_goals of `vectors` (each (D,))."""
        vectors = vectors[-self.max_goals :]
        self.explicit = torch.stack([v.detach().float() for v in vectors]) if vectors else None
        self._keys_cache = None

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor | None, past: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(salience (B, T), goal mixture (B, T, D), running sum (B, D) of the valid x so far).
        valid (B, S) covers the past tokens then these (None: all valid); past (B, D) or None:
        the running sum of the valid past tokens' x (what this call returns), so a decoding step
        costs the same whatever the length."""
        goals, keys, bonus = self._goal_keys(x.dtype)
        scores = x @ keys  # (B, T, M)
        if bonus is not None:
            scores = scores + bonus
        mixture = torch.softmax(scores, dim=-1) @ goals  # (B, T, D)
        relevance = cosine(self.relevance(x), mixture)  # (B, T)
        # cos(x_t, mean_(s<t) x_s) = cos(x_t, Σ_(s<t) x_s); with no earlier token the sum is 0,
        # its cosine 0 and the novelty 1.
        earlier, running = earlier_sum(x, valid, past)
        novelty = 1 - cosine(x, earlier)
        w = self.novelty_weight
        salience = (1 - w) * relevance + w * novelty
        return salience, mixture * self.logit_scale, running


    def _goal_keys(self, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(goals (M, D), score keys (D, M), explicit-goal bonus (M,) or None). Without autograd
        (decoding) they are kept until a weight or the explicit goals change, so a decoding step
        pays only the O(M·D) scores."""
        weights = (self.goals, self.query.weight)
        stamp = (*(w._version for w in weights), *(w.data_ptr() for w in weights), dtype)
        cache = self._keys_cache
        if not torch.is_grad_enabled() and cache is not None and cache[0] == stamp:
            return cache[1]
        goals = self.goals  # (M, D)
        if self.explicit is not None:
            goals = torch.cat([goals, self.explicit.to(goals)], dim=0)
        goals = goals.to(dtype)
        # (W_q x)·G_m = x·(G_m W_q): M·D per token instead of the D² of projecting x first.
        keys = (goals @ self.query.weight.to(dtype)).t() / math.sqrt(self.dim)
        bonus = None
        if self.explicit is not None:
            bonus = torch.zeros(goals.shape[0], device=goals.device, dtype=dtype)
            bonus[self.goals.shape[0] :] = self.priority
        self._keys_cache = None if torch.is_grad_enabled() else (stamp, (goals, keys, bonus))
        return goals, keys, bonus


def cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """The cosine of a and b over the last dimension, each norm clamped at eps (as
    F.cosine_similarity, with a lighter backward)."""
    dot = torch.linalg.vecdot(a, b)
    norms = torch.linalg.vecdot(a, a).clamp(min=eps * eps) * torch.linalg.vecdot(b, b).clamp(
        min=eps * eps)
    return dot * torch.rsqrt(norms)


def earlier_sum(x: torch.Tensor, valid: torch.Tensor | None,
                past: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_(s<t) x_s over the valid tokens before each token t (B, T, D), the sum over all of
    them (B, D)); x (B, T, D) are the new tokens, past (B, D) the running sum of the cached
    ones (None: none), valid (B, S) over cached and new tokens (None: all valid)."""
    t = x.shape[1]
    if valid is not None:
        x = x * valid[:, valid.shape[1] - t :, None].to(x.dtype)
    inclusive = x.cumsum(1)
    before = F.pad(inclusive[:, :-1], (0, 0, 1, 0))
    total = inclusive[:, -1]
    if past is not None:
        before = before + past[:, None].to(x.dtype)
        total = total + past.to(x.dtype)
    return before, total


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
