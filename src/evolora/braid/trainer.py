"""`evolora braid train`: train every strategy's fusion bank (models frozen), then the
MetaBraider by REINFORCE on measured rewards, writing everything to a run folder that resumes
after a kill.

Run folder: `fusion.jsonl` (bank losses), `decisions.jsonl` (every episode: task, decision, score,
compute, reward), `updates.jsonl` (per update: mean reward, per-head entropy and relevance, share
of episodes that join, that join a member of the task's domain, and that run two of them), `braid/`
(the trained banks, pair banks included), `braider/` (the final braider), `checkpoints/` (braider +
optimiser every `checkpoint_every` updates). The braider is rewarded on selection prompts, a share
of the holdout split (the built-in host and its specialists recall their train split, so on train
prompts the host would be judged on recall and the specialists' edge hidden); fusion banks learn on
the same selection prompts by default (`fusion.prompts`: on train prompts the lead recalls the
answer, so a bank learns to trust it and never what a joiner adds); the rest of the holdout split
is left for evaluation (`evaluation_prompts`). Each update's tasks and samples come from (seed,
update), so a resumed run continues exactly; an interrupted fusion stage restarts from its
beginning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evolora.braid.braided import BRAID_FILE, BraidedLLM
from evolora.braid.braider import DOMAIN, Decision, MetaBraider
from evolora.braid.config import TrainConfig
from evolora.braid.features import BraidInputs, encode_tasks
from evolora.braid.fusion import STRATEGIES
from evolora.braid.fusion_train import train_bank
from evolora.braid.generation import greedy_correct
from evolora.braid.pair_train import train_pair_banks
from evolora.braid.pool import POOL_FILE, ModelPool, load_pool
from evolora.braid.reinforce import Learner, leave_one_out
from evolora.braid.reward import reward
from evolora.ecology.roles import Role, distinct_examples, draw_example
from evolora.errors import EvoloraError
from evolora.tasks import Example, TaskGrid
from evolora.telemetry import RunDir


@dataclass
class Episodes:
    """The outcome of one batch of braiding episodes."""

    scores: torch.Tensor
    rewards: torch.Tensor
    compute: torch.Tensor
    latency: torch.Tensor


def families_of(config: TrainConfig) -> list[str]:
    """The braider's training families."""
    from evolora.braid.config import FAMILIES

    return list(config.families or FAMILIES)


def curriculum_weights(grid: TaskGrid, progress: float, on: bool) -> list[float] | None:
    """Cell weights: with a curriculum, difficulties above the reached level weigh 0.1."""
    if not on:
        return None
    levels = sorted(set(grid.difficulties))
    reached = levels[min(len(levels) - 1, int(progress * len(levels) * 1.5))]
    return [1.0 if d <= reached else 0.1 for _, d in grid.cells]


def lead_entropy(config: TrainConfig, progress: float) -> float:
    """The lead's extra entropy bonus at `progress` (0..1) through training."""
    return config.lead_entropy * max(0.0, 1.0 - progress / config.lead_entropy_until)


def role_prompts(grid: TaskGrid, rng: np.random.Generator, n: int, role: Role,
                 fraction: float, weights: list[float] | None = None) -> list[Example]:
    """`n` examples reserved for `role` (select: the braider's rewards; evaluate: the final
    evaluation), each from a cell drawn by `weights` (uniform when None)."""
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    cells = rng.choice(len(grid.cells), size=n, p=p)
    return [draw_example(grid, rng, grid.cells[c], role, fraction) for c in cells]


def evaluation_prompts(grid: TaskGrid, per_cell: int, seed: int,
                       fraction: float) -> list[Example]:
    """Up to `per_cell` distinct evaluation prompts per cell: holdout prompts outside the
    braider's selection share."""
    rng = np.random.default_rng([seed, 7])
    return [ex for cell in grid.cells
            for ex in distinct_examples(grid, rng, cell, Role.evaluate, fraction, per_cell)]


def check_profile_prompts(config: TrainConfig) -> None:
    """Stop with one sentence when the pool's skill was measured on selection prompts of a larger
    share than the run's `selection_fraction`: some of them would be the run's evaluation
    prompts."""
    path = Path(config.pool) / POOL_FILE
    recorded = (json.loads(path.read_text(encoding="utf-8")).get("skill_with") or {}
                if path.is_file() else {})
    fraction = recorded.get("selection_fraction")
    if fraction is not None and fraction > config.selection_fraction:
        raise EvoloraError(
            f"The pool '{config.pool}' measured its members' skill on a selection share of "
            f"{fraction} of the holdout split; selection_fraction must be at least that (got "
            f"{config.selection_fraction}), or the braider's prior would have seen evaluation "
            "prompts.")


def run_episodes(braid: BraidedLLM, braider: MetaBraider, examples: list[Example],
                 budgets, latencies, config: TrainConfig, generator=None, greedy=False,
                 explore: Callable[[BraidInputs], torch.Tensor] | None = None):
    """Decide for each example, run the braids, score them; (decision, inputs, Episodes).
    `explore` maps the inputs to the lead's exploration mass (`Learner.exploration`)."""
    pool = braid.pool
    inputs = encode_tasks(examples, pool.profiles, braider.slots(), budgets, latencies,
                          pool.device)
    decision = braider.decide(inputs, greedy=greedy, generator=generator,
                              explore=None if explore is None else explore(inputs))
    plan = braider.plan(decision)
    scores = greedy_correct(braid, [e.prompt for e in examples], [e.answer for e in examples],
                            plan).to(pool.device)
    value, compute, latency = reward(scores, plan, pool.profiles, inputs.budget, inputs.latency,
                                     config.reward)
    return decision, inputs, Episodes(scores, value, compute, latency)


def train_banks(braid: BraidedLLM, config: TrainConfig,
                on_step: Callable[[str, int, float], None] | None = None) -> None:
    """Train every layer-fusion strategy's bank of `braid` (models frozen) on the run's
    families and `config.fusion.prompts` prompts, then the pair banks of its pair families."""
    grid = TaskGrid(families_of(config), config.difficulties)
    for k, name in enumerate(STRATEGIES):
        def log(step, loss, name=name):
            if on_step is not None:
                on_step(name, step, loss)
        train_bank(braid, name, grid, config.fusion, config.braider.temperatures,
                   config.braider.top_ks, config.seed * 100 + k, log,
                   config.selection_fraction)
    train_pair_banks(braid, families_of(config), config.difficulties, config.fusion,
                     config.braider.temperatures, config.braider.top_ks, config.seed,
                     config.selection_fraction, on_step)


def prepare_braid(pool: ModelPool, run: RunDir, config: TrainConfig,
                  on_step: Callable[[str, int, float], None] | None = None) -> BraidedLLM:
    """The run's braid: loaded from `run/braid` when trained, else every bank trained now."""
    folder = run.path / "braid"
    if (folder / BRAID_FILE).is_file():
        return BraidedLLM.load(folder, pool)
    braid = BraidedLLM(pool)
    stream = run.stream("fusion")

    def log(name, step, loss):
        stream.append({"strategy": name, "step": step, "loss": loss})
        if on_step is not None:
            on_step(name, step, loss)

    train_banks(braid, config, log)
    braid.save(folder)
    return braid


def train(run: RunDir, config: TrainConfig, device: str | None = None,
          on_update: Callable[[int, int, dict], None] | None = None,
          on_fusion: Callable[[str, int, float], None] | None = None) -> MetaBraider:
    """Train (or resume training of) the run's fusion banks and braider; returns the braider."""
    torch.manual_seed(config.seed)
    check_profile_prompts(config)
    pool = load_pool(config.pool, device=device)
    braid = prepare_braid(pool, run, config, on_fusion)
    families = families_of(config)
    braider = MetaBraider(pool.names, pool.depth, config.braider, families).to(pool.device)
    learner = Learner(braider, config.lr, config.entropy, config.value, config.feedback)
    updates = -(-config.episodes // config.batch)
    start = 0
    if run.latest_checkpoint() is not None:
        checkpoint = run.load_checkpoint(device=pool.device)
        braider.load_state_dict({k[4:]: v for k, v in checkpoint.tensors.items()
                                 if k.startswith("net.")})
        learner.load_state({k: v for k, v in checkpoint.tensors.items()
                            if k.startswith("opt.")}, checkpoint.state)
        start = checkpoint.step
    grid = TaskGrid(families, config.difficulties)
    for update in range(start, updates):
        stats = train_step(braid, braider, learner, grid, config, update, updates, run)
        if on_update is not None:
            on_update(update, updates, stats)
        if (update + 1) % config.checkpoint_every == 0 or update + 1 == updates:
            tensors, state = learner.state()
            tensors.update({f"net.{k}": v for k, v in braider.state_dict().items()})
            run.save_checkpoint(update + 1, tensors, state)
    braider.save(run.path / "braider")
    return braider


def same_domain_joins(decision: Decision, inputs: BraidInputs) -> dict[str, float]:
    """Shares of a batch's decisions where a member whose domain is the task's family joins the
    lead (`joins/same_domain`), and where such a member joins a lead of that domain too
    (`joins/own_pair`: e.g. a family's specialists made with two seeds run together)."""
    lead = torch.nn.functional.one_hot(decision.lead, decision.models.shape[-1]).bool()
    own = inputs.models[..., DOMAIN] > 0
    joins = (decision.models & own & ~lead).any(-1)
    return {"joins/same_domain": float(joins.float().mean()),
            "joins/own_pair": float((joins & (own & lead).any(-1)).float().mean())}


def train_step(braid, braider, learner, grid, config: TrainConfig, update: int, updates: int,
               run: RunDir | None) -> dict:
    """One REINFORCE update on a fresh batch of episodes (all randomness from seed and update)."""
    rng = np.random.default_rng([config.seed, update])
    generator = torch.Generator(device=braid.pool.device).manual_seed(
        config.seed * 1_000_003 + update)
    weights = curriculum_weights(grid, update / updates, config.curriculum)
    group = config.samples_per_prompt
    prompts = role_prompts(grid, rng, config.batch // group, Role.select,
                           config.selection_fraction, weights)
    examples = [ex for ex in prompts for _ in range(group)]  # each prompt's samples side by side
    budgets = np.repeat(rng.choice(config.reward.budgets, size=len(prompts)), group).tolist()
    latencies = np.repeat(rng.choice(config.reward.latencies, size=len(prompts)), group).tolist()
    with torch.enable_grad():
        decision, inputs, episodes = run_episodes(braid, braider, examples, budgets, latencies,
                                                  config, generator)
        baseline = leave_one_out(episodes.rewards, group) if group > 1 else None
        stats = learner.update(decision, episodes.rewards, baseline,
                               lead_entropy(config, update / updates))
    stats.update({"update": update, "score/mean": float(episodes.scores.mean()),
                  "budget/compute": float(episodes.compute.mean()),
                  "joins/share": float((decision.models.sum(-1) > 1).float().mean()),
                  **same_domain_joins(decision, inputs)})
    if run is not None:
        plan = braider.plan(decision)
        for row, ex in enumerate(examples):
            run.stream("decisions").append({
                "update": update, "family": ex.family, "difficulty": ex.difficulty,
                "budget": budgets[row], "latency_limit": latencies[row],
                "decision": plan.spec(row, braider.members).to_dict(),
                "score": float(episodes.scores[row]), "reward": float(episodes.rewards[row]),
                "compute": float(episodes.compute[row])})
        run.stream("updates").append(stats)
    return stats
