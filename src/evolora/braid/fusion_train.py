"""Training the fusion banks with every model frozen: teacher-forced answer likelihood on the
prompts `FusionTrainConfig.prompts` names (by default the braider's selection prompts: on train
prompts the models recall the answers, so a bank would learn only to trust the lead).

Each row of a batch gets the kind of team the MetaBraider picks: a lead (most often the member
measured best on the row's family, as the braider learns to route) and, in a `pair_share` of the
rows, exactly one other member joining it (else each other member joins with `model_keep`, at
least one), with random fusion layers (at least one), a random temperature and router top-k. So
one trained bank serves every decision the braider can make and is trained most on the (lead,
member) pairs it actually chooses: fusion modules are trained once and cached, and a decision at
inference costs no new training.
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
from evolora.ecology.roles import Role, draw_example
from evolora.tasks import TaskGrid


def leads_for(families: list[str], profiles, lead_best: float,
              rng: np.random.Generator) -> np.ndarray:
    """A lead member per row: with chance `lead_best` the member measured best on the row's
    family (when any member has a skill for it), else one drawn uniformly."""
    leads = rng.integers(len(profiles), size=len(families))
    for row, family in enumerate(families):
        skills = [p.skill.get(family) for p in profiles]
        if rng.random() < lead_best and any(s is not None for s in skills):
            leads[row] = int(np.argmax([-1.0 if s is None else s for s in skills]))
    return leads


def random_plan(leads: np.ndarray, models: int, layers: int, strategy: str,
                config: FusionTrainConfig, temperatures: list[float], top_ks: list[int],
                rng: np.random.Generator, device) -> Plan:
    """Random decisions of one strategy around each row's lead: one other member joins it in a
    `pair_share` of rows, else a random subset (at least one); >= 1 fusion layer each."""
    rows = len(leads)
    chosen = rng.random((rows, models)) < config.model_keep
    for row, lead in enumerate(leads):
        others = [m for m in range(models) if m != lead]
        if others and (rng.random() < config.pair_share or not chosen[row, others].any()):
            chosen[row] = False
            chosen[row, rng.choice(others)] = True
        chosen[row, lead] = True
    return team_plan(chosen, leads, layers, strategy, config, temperatures, top_ks, rng, device)


def team_plan(chosen: np.ndarray, leads: np.ndarray, layers: int, strategy: str,
              config: FusionTrainConfig, temperatures: list[float], top_ks: list[int],
              rng: np.random.Generator, device) -> Plan:
    """The plan of these teams (rows, models) bool under one strategy, with random fusion layers
    (each kept with `layer_keep`, at least one), temperature and router top-k per row."""
    rows = len(leads)
    fused = rng.random((rows, layers)) < config.layer_keep
    fused[np.arange(rows), rng.integers(layers, size=rows)] = True
    return Plan(
        models=torch.tensor(chosen, device=device),
        layers=torch.tensor(fused, device=device),
        strategy=torch.full((rows,), strategy_names().index(strategy), device=device),
        temperature=torch.tensor(rng.choice(temperatures, size=rows), dtype=torch.float32,
                                 device=device),
        top_k=torch.tensor(rng.choice(top_ks, size=rows), device=device),
        lead=torch.tensor(leads, device=device),
    )


def training_rows(grid: TaskGrid, rng: np.random.Generator, n: int, prompts: str,
                  fraction: float) -> list:
    """`n` examples of uniformly drawn cells whose prompts have the role `prompts`."""
    role = Role(prompts)
    if role is Role.learn:
        return grid.sample_batch(rng, n, split="train")
    cells = rng.integers(len(grid.cells), size=n)
    return [draw_example(grid, rng, grid.cells[c], role, fraction) for c in cells]


def train_bank(braid: BraidedLLM, strategy: str, grid: TaskGrid, config: FusionTrainConfig,
               temperatures: list[float], top_ks: list[int], seed: int,
               on_step: Callable[[int, float], None] | None = None,
               fraction: float = 0.4) -> list[float]:
    """Train the bank of `strategy` for `config.steps` steps on `config.prompts` prompts
    (`fraction`: the selection share of the holdout split); returns the loss of every step."""
    def plan_for(examples, rng):
        leads = leads_for([ex.family for ex in examples], braid.pool.profiles,
                          config.lead_best, rng)
        return random_plan(leads, braid.pool.size, braid.slots, strategy, config,
                           temperatures, top_ks, rng, braid.pool.device)

    return fit_bank(braid, braid.banks[strategy], grid, plan_for, config.steps, config.batch,
                    config.lr, config.prompts, fraction, np.random.default_rng(seed), on_step)


def fit_bank(braid: BraidedLLM, bank: torch.nn.Module, grid: TaskGrid, plan_for,
             steps: int, batch: int, lr: float, prompts: str, fraction: float,
             rng: np.random.Generator,
             on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Fit `bank` by Adam for `steps` steps of `batch` rows of `prompts` prompts of `grid`, each
    batch braided as `plan_for(examples, rng)` asks; returns the loss of every step."""
    optimiser = torch.optim.Adam(bank.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        examples = training_rows(grid, rng, batch, prompts, fraction)
        plan = plan_for(examples, rng)
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
