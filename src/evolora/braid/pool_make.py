"""`make_pool`: the default pool of specialists — the host plus one LoRA adapter per task family,
fine-tuned by back-propagation into a `LoRAPopulation` (each step one pass per family through its
own adapter, Adam on each adapter's mean per-token answer likelihood), with every member's skill
measured on holdout prompts. `ensure_pool` caches the pool on disk and remakes it only when the
folder holds none or one made with another config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from evolora.braid.config import PoolMakeConfig
from evolora.braid.pool import ModelPool, ModelProfile, profile_of, with_adapter
from evolora.braid.reinforce import load_optimiser_state, optimiser_state
from evolora.ecology.roles import Role, distinct_examples
from evolora.hosts import Host, load_host
from evolora.hosts.generation import encode, target_logprobs
from evolora.lora import LoRAPopulation
from evolora.tasks import Example, TaskGrid, score_example
from evolora.telemetry.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def train_specialists(host: Host, config: PoolMakeConfig,
                      on_step: Callable[[int, float], None] | None = None,
                      checkpoints: Path | None = None,
                      grids: list | None = None,
                      on_snapshot: Callable[[int, LoRAPopulation], None] | None = None
                      ) -> LoRAPopulation:
    """One LoRA adapter per family of `config.families`, trained on that family's train prompts
    for `config.steps` steps, then on its own for the family's `config.extra_steps`.

    `on_snapshot(steps_done, population)` is called after every step, e.g. to score the adapters
    along training (with no extra steps, the adapters after S steps are exactly those of a make
    with `steps=S`: the sampler draws the same batches).

    `grids` (one per family, each with `sample_batch(rng, n, split)`) replaces the default
    sampler, `TaskGrid([family], config.difficulties)`, e.g. to train on one problem kind.

    With `checkpoints` (a folder), the adapters, the optimiser and the sampler are saved there
    every `config.checkpoint_every` steps, and training continues from the newest checkpoint
    made with the same config (a killed make resumes where it stopped).
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    population = LoRAPopulation(host, len(config.families), config.rank, config.alpha,
                                seed=config.seed)
    params = [t.requires_grad_() for table in (population.A, population.B)
              for t in table.values()]
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    grids = grids or [TaskGrid([f], config.difficulties) for f in config.families]
    start = _resume(checkpoints, config, population, optimiser, rng)
    last = {f: config.steps + config.extra_steps.get(f, 0) for f in config.families}
    total_steps = max(last.values())
    finished: dict[int, list[torch.Tensor]] = {}  # member -> its adapter slices, kept as they are
    try:
        for step in range(start, total_steps):
            # One pass per family: its rows share lengths, so little is padded, and each family's
            # gradient reaches only its own adapter (Adam is elementwise: independent adapters).
            optimiser.zero_grad()
            training = [k for k, f in enumerate(config.families) if step < last[f]]
            for k in set(range(len(grids))) - set(training) - set(finished):
                finished[k] = [t[k].detach().clone() for t in params]
            total = 0.0
            for k in training:
                examples = grids[k].sample_batch(rng, config.batch_per_family, split="train")
                loss = answer_loss(host, examples, population.route([k] * len(examples)))
                loss.backward()
                total += float(loss.detach()) / len(training)
            optimiser.step()
            with torch.no_grad():  # Adam's momentum would keep moving a finished adapter
                for k, kept in finished.items():
                    for tensor, value in zip(params, kept, strict=True):
                        tensor[k] = value
            if on_step is not None:
                on_step(step, total)
            if on_snapshot is not None:
                on_snapshot(step + 1, population)
            if checkpoints is not None and ((step + 1) % config.checkpoint_every == 0
                                            or step + 1 == total_steps):
                tensors, state = optimiser_state(optimiser)
                tensors.update({f"lora.{k}": v for k, v in population.state_tensors().items()})
                save_checkpoint(checkpoints, step + 1, tensors, {
                    **state, "rng": rng.bit_generator.state, "config": config.model_dump()})
    finally:
        for t in params:
            t.requires_grad_(False)
        population.detach()
    return population


def _resume(folder: Path | None, config: PoolMakeConfig, population: LoRAPopulation,
            optimiser: torch.optim.Optimizer, rng: np.random.Generator) -> int:
    """The step to start from: 0, or that of the newest checkpoint in `folder` made with this
    config (its adapters, optimiser and sampler restored). Checkpoints made with another config
    are deleted: they can never be resumed, and they would block or prune this make's own."""
    if folder is None or not folder.is_dir():
        return 0
    for stale in list_checkpoints(folder):
        if json.loads(stale.read_text(encoding="utf-8")).get("state", {}).get(
                "config") != config.model_dump():
            stale.with_suffix(".safetensors").unlink(missing_ok=True)
            stale.unlink()
    path = latest_checkpoint(folder)
    if path is None:
        return 0
    checkpoint = load_checkpoint(path)  # copied below onto the adapters' device
    with torch.no_grad():
        for key, tensor in population.state_tensors().items():
            tensor.copy_(checkpoint.tensors[f"lora.{key}"])
    load_optimiser_state(optimiser, checkpoint.tensors, checkpoint.state)
    rng.bit_generator.state = checkpoint.state["rng"]
    return checkpoint.step


def answer_loss(host: Host, examples, route=None) -> torch.Tensor:
    """Mean negative per-token log-likelihood of the examples' answers, through the population
    rows `route` selects (None: the host alone), with gradients."""
    prompts = encode(host.tokenizer, [ex.prompt for ex in examples], special=True)
    targets = encode(host.tokenizer, [ex.answer + "\n" for ex in examples], special=False)
    with torch.enable_grad():
        logp = target_logprobs(host.model, prompts, targets, host.tokenizer.pad_token_id, route)
        lengths = torch.tensor([len(t) for t in targets], device=logp.device)
        return -(logp / lengths).mean()


def skill_prompts(family: str, k: int, difficulties: list[int], n: int, seed: int,
                  selection_fraction: float | None = None) -> list[Example]:
    """The prompts `measure_skill` scores family `family` (number `k` of the pool's families)
    on: `n` holdout draws, or with `selection_fraction` up to `n` distinct prompts of that
    selection share of the holdout split, an equal share per cell (a cell holding fewer gives
    all it has)."""
    rng = np.random.default_rng([seed, k])
    grid = TaskGrid([family], difficulties)
    if selection_fraction is None:
        return grid.sample_batch(rng, n, split="holdout")
    share = -(-n // len(grid.cells))
    return [ex for cell in grid.cells
            for ex in distinct_examples(grid, rng, cell, Role.select, selection_fraction, share)]


def measure_skill(host: Host, families: list[str], difficulties: list[int], n: int, seed: int,
                  max_new_tokens: int, selection_fraction: float | None = None
                  ) -> dict[str, float]:
    """Mean score per family of greedy completions on its `skill_prompts`."""
    skill = {}
    for k, family in enumerate(families):
        examples = skill_prompts(family, k, difficulties, n, seed, selection_fraction)
        outs = host.generate([ex.prompt for ex in examples], max_new_tokens=max_new_tokens)
        skill[family] = float(np.mean([score_example(e, o) for e, o in zip(examples, outs,
                                                                          strict=True)]))
    return skill


def make_pool(config: PoolMakeConfig, device: str | None = None,
              on_step: Callable[[int, float], None] | None = None,
              checkpoints: Path | None = None) -> tuple[ModelPool, dict[str, torch.Tensor]]:
    """The host and its per-family specialists as a pool, plus their adapter tensors to save
    (`checkpoints`: see `train_specialists`)."""
    host = load_host(config.host, device=device)
    population = train_specialists(host, config, on_step, checkpoints)
    hosts, profiles, tensors = [host], [], {}
    for k, family in enumerate(config.families):
        name = f"{family}-lora"
        member = population.get_member(k)
        hosts.append(with_adapter(host, {n: (a, b) for n, (a, b) in member.items()},
                                  population.scale, name))
        for layer, (a, b) in member.items():
            tensors[f"{name}/{layer}.A"], tensors[f"{name}/{layer}.B"] = a, b
    for k, member in enumerate(hosts):
        skill = measure_skill(member, config.families, config.difficulties,
                              config.skill_examples, config.seed, config.max_new_tokens)
        kind, domain = ("host", "general") if k == 0 else ("adapter", config.families[k - 1])
        extra = {"rank": config.rank, "alpha": config.alpha} if k else {}
        profiles.append(profile_of(member, "host" if k == 0 else member.name, kind, config.host,
                                   domain=domain, skill=skill, **extra))
    return ModelPool(hosts, profiles), tensors


def profile_table(profiles: list[ModelProfile]) -> list[dict]:
    """One row per member for display: name, kind, domain, params, cost, skill per family."""
    return [{"name": p.name, "kind": p.kind, "domain": p.domain, "params": p.params,
             "layers": p.layers, "hidden": p.hidden, **{f"skill/{f}": round(s, 3)
                                                        for f, s in p.skill.items()}}
            for p in profiles]


def ensure_pool(folder, config: PoolMakeConfig | None = None, device: str | None = None):
    """The pool cached in `folder`. It is made there first when the folder holds no pool, or one
    that `pool make` made with another config than `config` (a stale cache); a pool saved without
    a make config (assembled by hand) is always used as it is."""
    from evolora.braid.pool import POOL_FILE, load_pool, made_with

    recorded = made_with(folder)
    stale = config is not None and recorded is not None and recorded != config.model_dump()
    if stale or not (Path(folder) / POOL_FILE).is_file():
        config = config or PoolMakeConfig()
        pool, tensors = make_pool(config, device, checkpoints=Path(folder) / "checkpoints")
        pool.save(folder, tensors, config.model_dump())
    return load_pool(Path(folder), device)
