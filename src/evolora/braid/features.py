"""What the MetaBraider sees: task features (prompt statistics, difficulty, compute budget, latency
limit; the family is a learned embedding plus a one-hot) and per-model features from the pool's
profiles, some of them relative to the task (skill on its family, domain match)."""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from evolora.braid.pool import ModelProfile
from evolora.tasks import Example

TASK_FEATURES = ("difficulty", "length", "digits", "letters", "punctuation", "spaces",
                 "brackets", "quotes", "budget", "latency_limit")
MODEL_FEATURES = ("log_params", "layers", "hidden", "cost_share", "skill_on_family",
                  "skill_mean", "domain_match", "is_base")


@dataclass
class BraidInputs:
    """A batch of tasks as tensors: task (B, Ft), family slot (B,), models (B, M, Fm)."""

    task: torch.Tensor
    family: torch.Tensor
    models: torch.Tensor
    budget: torch.Tensor  # (B,) compute budget, share of the full pool
    latency: torch.Tensor  # (B,) latency limit, in units of the slowest member

    def take(self, rows) -> BraidInputs:
        """The inputs of a subset of rows."""
        index = torch.as_tensor(rows, dtype=torch.long, device=self.task.device)
        return BraidInputs(*(t.index_select(0, index) for t in (
            self.task, self.family, self.models, self.budget, self.latency)))


def prompt_features(prompt: str) -> list[float]:
    """Length and character-class shares of a prompt (7 numbers, roughly in [0, 1])."""
    n = max(len(prompt), 1)
    return [
        min(len(prompt) / 120.0, 2.0),
        sum(c.isdigit() for c in prompt) / n,
        sum(c.isalpha() for c in prompt) / n,
        sum(c in string.punctuation for c in prompt) / n,
        prompt.count(" ") / n,
        sum(c in "()[]{}" for c in prompt) / n,
        sum(c in "'\"" for c in prompt) / n,
    ]


def model_features(profiles: Sequence[ModelProfile], family: str) -> list[list[float]]:
    """Per member: size, shape, share of the pool's cost, skill on `family` (its mean skill when
    the family was never measured), mean skill, domain match, base-model flag."""
    total = sum(p.cost_per_token for p in profiles) or 1.0
    rows = []
    for p in profiles:
        mean = sum(p.skill.values()) / len(p.skill) if p.skill else 0.0
        rows.append([
            math.log10(max(p.params, 1)) / 10.0, p.layers / 48.0, p.hidden / 8192.0,
            p.cost_per_token / total, p.skill.get(family, mean), mean,
            float(p.domain == family), float(p.kind == "host"),
        ])
    return rows


def encode_tasks(examples: Sequence[Example], profiles: Sequence[ModelProfile],
                 family_slot: dict[str, int], budgets: Sequence[float],
                 latencies: Sequence[float], device) -> BraidInputs:
    """Tensors for a batch of examples under per-row budgets and latency limits."""
    task = [[ex.difficulty / 5.0, *prompt_features(ex.prompt), b, lat]
            for ex, b, lat in zip(examples, budgets, latencies, strict=True)]
    models = [model_features(profiles, ex.family) for ex in examples]
    return BraidInputs(
        task=torch.tensor(task, dtype=torch.float32, device=device),
        family=torch.tensor([family_slot[ex.family] for ex in examples], device=device),
        models=torch.tensor(models, dtype=torch.float32, device=device),
        budget=torch.tensor(list(budgets), dtype=torch.float32, device=device),
        latency=torch.tensor(list(latencies), dtype=torch.float32, device=device),
    )
