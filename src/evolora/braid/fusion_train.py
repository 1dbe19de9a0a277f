"""Training the fusion banks with every model frozen: teacher-forced answer likelihood.

Each row of a batch gets a random subset of models (at least two), random fusion layers (at least
one), a random temperature and router top-k, so one trained bank serves every decision the
MetaBraider can make: fusion modules are trained once and cached, and a decision at inference
costs no new training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FusionTrainConfig
from evolora.braid.fusion import strategy_names
from evolora.braid.generation import answer_logprobs
from evolora.braid.plan import Plan
from evolora.tasks import TaskGrid


def random_plan(rows: int, models: int, layers: int, strategy: str, config: FusionTrainConfig,
                temperatures: list[float], top_ks: list[int], rng: np.random.Generator,
                device) -> Plan:
    """Random decisions for `rows` rows of one strategy (>= 2 models, >= 1 fusion layer each)."""
    chosen = rng.random((rows, models)) < config.model_keep
    for row in range(rows):
        if chosen[row].sum() < min(2, models):
            chosen[row, rng.choice(models, size=min(2, models), replace=False)] = True
    fused = rng.random((rows, layers)) < config.layer_keep
    fused[np.arange(rows), rng.integers(layers, size=rows)] = True
    return Plan(
        models=torch.tensor(chosen, device=device),
        layers=torch.tensor(fused, device=device),
        strategy=torch.full((rows,), strategy_names().index(strategy), device=device),
        temperature=torch.tensor(rng.choice(temperatures, size=rows), dtype=torch.float32,
                                 device=device),
        top_k=torch.tensor(rng.choice(top_ks, size=rows), device=device),
    )


def train_bank(braid: BraidedLLM, strategy: str, grid: TaskGrid, config: FusionTrainConfig,
               temperatures: list[float], top_ks: list[int], seed: int,
               on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train the bank of `strategy` for `config.steps` steps; returns the loss of every step."""
    rng = np.random.default_rng(seed)
    bank = braid.banks[strategy]
    optimiser = torch.optim.Adam(bank.parameters(), lr=config.lr)
    losses = []
    for step in range(config.steps):
        examples = grid.sample_batch(rng, config.batch, split="train")
        plan = random_plan(config.batch, braid.pool.size, braid.slots, strategy, config,
                           temperatures, top_ks, rng, braid.pool.device)
        with torch.enable_grad():
            loss = -answer_logprobs(braid, [ex.prompt for ex in examples],
                                    [ex.answer + "\n" for ex in examples], plan).mean()
            optimiser.zero_grad()
            loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    return losses
