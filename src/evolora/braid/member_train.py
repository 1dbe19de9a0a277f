"""`train_full_member`: a pool member made by fine-tuning EVERY weight of a host on task families'
train prompts (AdamW on the mean per-token answer likelihood, batch 32), the kind of member that
learns logic and math where LoRA specialists of the same host stay near chance. Its checkpoints
(the weights, the optimiser and the sampler, in safetensors + JSON) let a killed run continue."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from evolora.braid.config import FAMILIES
from evolora.braid.pool_make import answer_loss
from evolora.braid.reinforce import load_optimiser_state, optimiser_state
from evolora.errors import EvoloraError
from evolora.hosts import Host, load_host
from evolora.tasks import TaskGrid
from evolora.telemetry.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

BATCH = 32


def check_member_settings(families: list[str], difficulties: list[int], steps: int,
                          lr: float) -> None:
    """Raise an EvoloraError naming the first setting that cannot train a member."""
    unknown = [f for f in families if f not in FAMILIES]
    if not families or unknown:
        raise EvoloraError(f"FAMILY must be one or more of {list(FAMILIES)}; got "
                           f"{unknown or families!r}.")
    if not difficulties or any(d not in range(1, 6) for d in difficulties):
        raise EvoloraError(f"--difficulties must be one or more of 1-5; got {difficulties}.")
    if steps < 1:
        raise EvoloraError(f"--steps must be at least 1; got {steps}.")
    if not lr > 0:
        raise EvoloraError(f"--lr must be positive; got {lr}.")


def train_full_member(host_spec: str, families: str | list[str], difficulties: list[int],
                      steps: int, lr: float, seed: int, *, device: str | None = None,
                      sampler=None, on_step: Callable[[int, float], None] | None = None,
                      every: int = 0, on_snapshot: Callable[[int, Host], None] | None = None,
                      checkpoints: Path | None = None, checkpoint_every: int = 500) -> Host:
    """The host `host_spec` (on `device`, default the best one) with every weight fine-tuned for
    `steps` steps on batches of 32 train prompts of `families` at `difficulties`.

    `sampler` (with `sample_batch(rng, n, split)`) replaces `TaskGrid(families, difficulties)`.
    `on_step(step, loss)` runs after every step (1-based); `on_snapshot(step, host)` after every
    `every` steps before the last (0: never). With `checkpoints` (a folder), the weights, the
    optimiser and the sampler are saved there every `checkpoint_every` steps, and training
    continues from the newest checkpoint there; one made with other settings is an error.
    """
    families = [families] if isinstance(families, str) else list(families)
    check_member_settings(families, difficulties, steps, lr)
    torch.manual_seed(seed)
    host = load_host(host_spec, device=device)
    named = dict(host.model.named_parameters())
    params = list(named.values())
    optimiser = torch.optim.AdamW([p.requires_grad_() for p in params], lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    sampler = sampler or TaskGrid(families, difficulties)
    settings = {"host": host_spec, "families": families, "difficulties": list(difficulties),
                "steps": steps, "lr": lr, "seed": seed}
    start = _resume(checkpoints, settings, named, optimiser, rng)
    try:
        for step in range(start + 1, steps + 1):
            loss = answer_loss(host, sampler.sample_batch(rng, BATCH, split="train"))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if on_step is not None:
                on_step(step, float(loss.detach()))
            if on_snapshot is not None and every > 0 and step % every == 0 and step < steps:
                on_snapshot(step, host)
            if checkpoints is not None and step % checkpoint_every == 0 and step < steps:
                tensors, state = optimiser_state(optimiser)
                tensors.update({f"model.{k}": v.detach() for k, v in named.items()})
                save_checkpoint(checkpoints, step, tensors, {
                    **state, "rng": rng.bit_generator.state, "settings": settings}, keep=1)
    finally:
        for p in params:
            p.requires_grad_(False)
    return host


def _resume(folder: Path | None, settings: dict, named: dict[str, torch.Tensor],
            optimiser: torch.optim.Optimizer, rng: np.random.Generator) -> int:
    """The last step done: 0, or that of the newest checkpoint in `folder` (its weights,
    optimiser and sampler restored)."""
    path = latest_checkpoint(folder) if folder is not None else None
    if path is None:
        return 0
    recorded = json.loads(path.read_text(encoding="utf-8"))["state"].get("settings")
    if recorded != settings:
        raise EvoloraError(f"The checkpoint '{path}' was made with other settings ({recorded}); "
                           "train with those or choose another --out folder.")
    checkpoint = load_checkpoint(path)
    with torch.no_grad():
        for name, tensor in named.items():
            tensor.copy_(checkpoint.tensors[f"model.{name}"])
    load_optimiser_state(optimiser, checkpoint.tensors, checkpoint.state)
    rng.bit_generator.state = checkpoint.state["rng"]
    return checkpoint.step
