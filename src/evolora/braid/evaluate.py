"""Holdout accuracy of single models, fixed braids and the MetaBraider's greedy decisions."""

from __future__ import annotations

import torch

from evolora.braid.braided import BraidedLLM
from evolora.braid.braider import MetaBraider
from evolora.braid.config import TrainConfig
from evolora.braid.generation import greedy_correct
from evolora.braid.plan import BraidSpec, Plan
from evolora.tasks import Example


def correct(braid: BraidedLLM, spec: BraidSpec, examples: list[Example]) -> torch.Tensor:
    """Per-example greedy exact-match (0/1) of one fixed braid."""
    plan = Plan.repeat(spec, len(examples), braid.pool.names, braid.pool.depth,
                       braid.pool.device)
    return greedy_correct(braid, [e.prompt for e in examples], [e.answer for e in examples], plan)


def evaluate_single(braid: BraidedLLM, name: str, examples: list[Example]) -> float:
    """Accuracy of pool member `name` alone."""
    return float(correct(braid, BraidSpec((name,)), examples).mean())


@torch.no_grad()
def braider_outcome(braid: BraidedLLM, braider: MetaBraider, examples: list[Example],
                    budget: float, config: TrainConfig, latency: float = 2.0):
    """The `Episodes` (scores, rewards, compute, latency) of the braider's greedy decisions."""
    from evolora.braid.trainer import run_episodes

    for ex in examples:
        braider.family_slot(ex.family)
    return run_episodes(braid, braider, examples, [budget] * len(examples),
                        [latency] * len(examples), config, greedy=True)[2]


def evaluate_braider(braid: BraidedLLM, braider: MetaBraider, examples: list[Example],
                     budget: float, config: TrainConfig, latency: float = 2.0
                     ) -> tuple[float, float]:
    """(accuracy, mean compute share) of the braider's greedy decisions at this budget."""
    episodes = braider_outcome(braid, braider, examples, budget, config, latency)
    return float(episodes.scores.mean()), float(episodes.compute.mean())
