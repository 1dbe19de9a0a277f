"""Does every MetaBraider head learn, and does the braider adapt to a new task type? (issue: braid)

Per seed, with the fusion banks trained once (models frozen):
1. head ablations: the braider trained with every head learning, and with each head in turn frozen
   at random (uniform choices, never updated); holdout reward and accuracy of greedy decisions,
   and each head's decision entropy and the mean reward at the start and end of training;
2. the holdout reward of greedy decisions over training (every head learning), every
   `--probe-every` updates: the training reward cannot show learning, since the curriculum serves
   harder prompts late and the lead's entropy bonus explores early;
3. few-shot adaptation: a braider trained without one family, then fed back episodes of that
   family one batch of `--shot-batch` at a time through the online API
   (`Learner.learn_from_feedback`, its decisions sampled with `Learner.exploration`, settings
   `--feedback-*`); its greedy holdout reward on the new family after 0, 4, 8, ..., `--adapt`
   episodes, the first count reaching 80 % of the final reward (the issue's wording) and the
   first reaching 80 % of the final gain over the start (stricter). `--few-shot-only` measures
   this alone, and also the first count reaching 80 % of the reward of the family's best member
   alone (a final reward stuck low cannot pass that); `--braiders DIR` keeps each seed's fusion
   banks and held-out braider, so runs that differ only in the feedback settings train nothing.

    python benchmarks/braid_learning.py [--pool runs/braid-pool] [--seeds 3] [--keep DIR]
    python benchmarks/braid_learning.py --few-shot-only --skill-prior 0 --braiders DIR
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _common import (
    add_keep_argument,
    add_tag_argument,
    kept_seed,
    mean_std,
    shared_machine_note,
    tagged,
    write_result,
)
from safetensors.torch import load_file, save_file

from evolora.braid.braided import BRAID_FILE, BraidedLLM
from evolora.braid.braider import HEADS, MetaBraider
from evolora.braid.config import FAMILIES, BraiderConfig, PoolMakeConfig, TrainConfig
from evolora.braid.evaluate import correct
from evolora.braid.plan import BraidSpec
from evolora.braid.pool_make import ensure_pool
from evolora.braid.reinforce import Learner
from evolora.braid.trainer import (
    evaluation_prompts,
    role_prompts,
    run_episodes,
    train_banks,
    train_step,
)
from evolora.ecology.roles import Role
from evolora.tasks import TaskGrid


def trained_braider(braid, config: TrainConfig, families, frozen=(), probe=None):
    """A braider trained on `families` with `frozen` heads; (braider, learner, history).

    `probe` (update, braider) is called before the first update and after each one."""
    torch.manual_seed(config.seed)
    braider = MetaBraider(braid.pool.names, braid.pool.depth, config.braider,
                          list(families)).to(braid.pool.device)
    braider.frozen = set(frozen)
    learner = Learner(braider, config.lr, config.entropy, config.value, config.feedback)
    grid = TaskGrid(list(families), config.difficulties)
    updates = -(-config.episodes // config.batch)
    history = []
    for u in range(updates):
        if probe is not None:
            probe(u, braider)
        history.append(train_step(braid, braider, learner, grid, config, u, updates, None))
    if probe is not None:
        probe(updates, braider)
    return braider, learner, history


@torch.no_grad()
def outcome(braid, braider, examples, config) -> tuple[float, float, float]:
    """(mean reward, accuracy, share of prompts where a member joins the lead) of greedy
    decisions at full budget."""
    n = len(examples)
    decision, _, ep = run_episodes(braid, braider, examples, [1.0] * n, [2.0] * n, config,
                                   greedy=True)
    joins = (decision.models.sum(-1) > 1).float().mean()
    return float(ep.rewards.mean()), float(ep.scores.mean()), float(joins)


def held_out_braider(braid, config: TrainConfig, held: str, folder: Path | None):
    """(braider, learner) trained on every family but `held`, with a fresh slot for `held`; kept
    in `folder` (braider and optimiser) and reloaded from there when present."""
    files = (folder / "learner.safetensors", folder / "learner.json") if folder else ()
    trained_by = config.model_dump(exclude={"feedback"})
    if folder is not None and files[0].is_file():
        meta = json.loads(files[1].read_text(encoding="utf-8"))
        if meta.pop("config") != trained_by:
            raise SystemExit(f"{folder} holds a braider trained with another config; use "
                             "another --braiders folder")
        braider = MetaBraider.load(folder / "braider", braid.pool.device)
        learner = Learner(braider, config.lr, config.entropy, config.value, config.feedback)
        learner.load_state(load_file(str(files[0]), device=str(braid.pool.device)), meta)
    else:
        braider, learner, _ = trained_braider(braid, config, [f for f in FAMILIES if f != held])
        if folder is not None:
            braider.save(folder / "braider")
            tensors, meta = learner.state()
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(files[0]))
            files[1].write_text(json.dumps(meta | {"config": trained_by}), encoding="utf-8")
    braider.family_slot(held)
    return braider, learner


def few_shot(braid, config, held, holdout, args, seed, folder: Path | None = None):
    """Greedy holdout reward on the held-out family after each batch of feedback episodes, each
    batch learnt through the online API (`Learner.learn_from_feedback`)."""
    braider, learner = held_out_braider(braid, config, held, folder)
    rng = np.random.default_rng([seed, 99])
    gen = torch.Generator(device=braid.pool.device).manual_seed(seed)
    grid = TaskGrid([held], config.difficulties)
    curve = [(0, outcome(braid, braider, holdout, config)[0])]
    for seen in range(args.shot_batch, args.adapt + 1, args.shot_batch):
        examples = role_prompts(grid, rng, args.shot_batch, Role.select,
                                config.selection_fraction)
        with torch.no_grad():
            decision, inputs, ep = run_episodes(braid, braider, examples,
                                                [1.0] * len(examples), [2.0] * len(examples),
                                                config, gen, explore=learner.exploration)
        learner.learn_from_feedback(inputs, decision, ep.rewards)
        curve.append((seen, outcome(braid, braider, holdout, config)[0]))
    start, final = curve[0][1], curve[-1][1]
    of_reward = next((n for n, r in curve if r >= 0.8 * final), None)  # None: final < 0
    of_gain = next(n for n, r in curve if r - start >= 0.8 * (final - start))
    return curve, {"reward": of_reward, "gain": of_gain}


def seed_config(seed: int, args) -> TrainConfig:
    """The seed's training config from the command line."""
    return TrainConfig(seed=seed, pool=str(args.pool), episodes=args.episodes,
                       fusion={"steps": args.fusion_steps, "batch": 16,
                               "prompts": args.fusion_prompts},
                       braider={"skill_prior": args.skill_prior,
                                "join_prior": args.join_prior,
                                "join_by_task": args.join_by_task},
                       feedback={"updates": args.feedback_updates,
                                 "window": args.feedback_window,
                                 "explore": args.feedback_explore,
                                 "baseline": args.feedback_baseline})


def seed_braid(pool, config: TrainConfig, folder: Path | None) -> BraidedLLM:
    """The seed's braid with trained fusion banks, kept in `folder/braid` when given."""
    if folder is not None and (folder / "braid" / BRAID_FILE).is_file():
        return BraidedLLM.load(folder / "braid", pool)
    braid = BraidedLLM(pool)
    train_banks(braid, config)
    if folder is not None:
        braid.save(folder / "braid")
    return braid


def held_out_prompts(seed: int, config: TrainConfig, args):
    """The held-out family's evaluation prompts of a seed."""
    return evaluation_prompts(TaskGrid([args.held_out], [1, 2, 3]), args.holdout // 3,
                              seed + 9, config.selection_fraction)


def few_shot_seed(pool, seed: int, args) -> dict:
    """Only the few-shot curve of one seed (`--few-shot-only`)."""
    config = seed_config(seed, args)
    folder = args.braiders / f"seed{seed}" if args.braiders is not None else None
    braid = seed_braid(pool, config, folder)
    held = held_out_prompts(seed, config, args)
    out = {"shot": few_shot(braid, config, args.held_out, held, args, seed,
                            folder / args.held_out if folder is not None else None),
           "best_member": best_member(braid, held, config)}
    return json.loads(json.dumps(out, default=float))


def best_member(braid, examples, config: TrainConfig) -> tuple[str, float]:
    """The pool member whose greedy answers alone earn most reward on `examples`, and that
    reward (at full budget: its accuracy less lam times its compute share)."""
    profiles = braid.pool.profiles
    total = sum(p.cost_per_token for p in profiles)
    rewards = {p.name: float(correct(braid, BraidSpec((p.name,)), examples).mean())
               - config.reward.lam * p.cost_per_token / total for p in profiles}
    name = max(rewards, key=rewards.get)
    return name, rewards[name]


def one_seed(pool, grid, seed: int, args) -> dict:
    """Every ablation row, the entropies and rewards, and the few-shot curve of one seed."""
    config = seed_config(seed, args)
    braid = seed_braid(pool, config, None)
    holdout = evaluation_prompts(grid, -(-args.holdout // len(grid.cells)), seed,
                                 config.selection_fraction)
    out: dict = {"rows": {}, "entropy": {}, "probe": []}
    updates = -(-config.episodes // config.batch)

    def probe(update, braider):
        if update % args.probe_every == 0 or update == updates:
            reward, _, joins = outcome(braid, braider, holdout, config)
            out["probe"].append((update, reward, joins))

    for name, frozen in [("all heads learn", ())] + [(f"{h} frozen at random", (h,))
                                                      for h in HEADS]:
        braider, _, history = trained_braider(braid, config, FAMILIES, frozen,
                                              None if frozen else probe)
        out["rows"][name] = outcome(braid, braider, holdout, config)
        if not frozen:
            for h in (*HEADS, "lead"):  # lead: the lead model alone, without joins
                out["entropy"][h] = (np.mean([x[f"entropy/{h}"] for x in history[:4]]),
                                     np.mean([x[f"entropy/{h}"] for x in history[-4:]]))
            out["reward"] = (np.mean([x["reward/mean"] for x in history[:4]]),
                             np.mean([x["reward/mean"] for x in history[-4:]]))
            out["join_share"] = [(x["joins/share"], x["joins/same_domain"]) for x in history]
    held = held_out_prompts(seed, config, args)
    out["shot"] = few_shot(braid, config, args.held_out, held, args, seed)
    return json.loads(json.dumps(out, default=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("runs/braid-pool"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=640)
    parser.add_argument("--holdout", type=int, default=60)
    parser.add_argument("--held-out", default="sorting", help="family kept from braider training")
    parser.add_argument("--adapt", type=int, default=40, help="feedback episodes on it")
    parser.add_argument("--shot-batch", type=int, default=4)
    parser.add_argument("--probe-every", type=int, default=5,
                        help="updates between holdout probes of the learning braider")
    parser.add_argument("--fusion-steps", type=int, default=30,
                        help="bank steps per strategy")
    parser.add_argument("--fusion-prompts", choices=("learn", "select"), default="select",
                        help="prompts the banks learn on")
    parser.add_argument("--skill-prior", type=float, default=BraiderConfig().skill_prior,
                        help="starting weight of the members' measured skill in the lead "
                        "logit (0: the model head learns its routing from rewards alone)")
    feedback = TrainConfig().feedback
    parser.add_argument("--feedback-updates", type=int, default=feedback.updates,
                        help="policy-gradient steps per feedback batch (few-shot)")
    parser.add_argument("--feedback-window", type=int, default=feedback.window,
                        help="recent feedback episodes each step learns from (few-shot)")
    parser.add_argument("--feedback-explore", type=float, default=feedback.explore,
                        help="share of a new family's first feedback decisions that try its "
                        "least-tried members (few-shot)")
    parser.add_argument("--feedback-baseline", choices=("window", "value"),
                        default=feedback.baseline, help="what feedback rewards are judged "
                        "against (few-shot)")
    parser.add_argument("--few-shot-only", action="store_true",
                        help="measure only the few-shot curve (no ablations, no probes)")
    parser.add_argument("--braiders", type=Path, default=None,
                        help="folder keeping each seed's fusion banks and held-out braider "
                        "(with its optimiser), reused by --few-shot-only runs")
    parser.add_argument("--join-prior", type=float, default=BraiderConfig().join_prior,
                        help="starting weight of the profiles' evidence that a member helps the "
                        "lead in its joining logit (0: joins learned from rewards alone)")
    parser.add_argument("--join-by-task", action="store_true",
                        help="the task token gives each member its own joining score")
    add_tag_argument(parser)
    add_keep_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pool = ensure_pool(args.pool, PoolMakeConfig())  # the default pool, cached on disk
    grid = TaskGrid(FAMILIES, [1, 2, 3])
    seeds = []
    if args.few_shot_only:
        for seed in range(args.seeds):
            seeds.append(kept_seed(args.keep, seed, partial(few_shot_seed, pool, seed, args)))
            print(f"seed {seed} done", flush=True)
            report_few_shot([s["shot"] for s in seeds], [s["best_member"] for s in seeds], args,
                            seed + 1)
        return
    for seed in range(args.seeds):
        seeds.append(kept_seed(args.keep, seed, partial(one_seed, pool, grid, seed, args)))
        print(f"seed {seed} done", flush=True)
        rows = {n: [s["rows"][n] for s in seeds] for n in seeds[0]["rows"]}
        entropy = {h: [s["entropy"][h] for s in seeds] for h in seeds[0]["entropy"]}
        report(rows, entropy, [s["reward"] for s in seeds], [s["probe"] for s in seeds],
               [s["join_share"] for s in seeds], [s["shot"] for s in seeds], args, seed + 1)


def few_shot_lines(shots, args) -> list[str]:
    """The few-shot curve over the seeds and the episodes each seed took to reach 80 %."""
    curve = np.array([[r for _, r in c] for c, _ in shots])
    counts = [n for n, _ in shots[0][0]]
    return [f"Few-shot on `{args.held_out}` (held out of braider training): greedy holdout "
            "reward after n feedback episodes: " + ", ".join(
                f"{n}: {mean_std(curve[:, i])}" for i, n in enumerate(counts)),
            "Episodes to reach 80 % of the final reward, per seed: "
            f"{[r['reward'] for _, r in shots]} (target <= 20); to reach 80 % of the final "
            f"gain over the start: {[r['gain'] for _, r in shots]}; feedback: "
            f"{args.feedback_updates} step(s) per batch of {args.shot_batch} over the last "
            f"{args.feedback_window} episodes, baseline {args.feedback_baseline}, exploration "
            f"{args.feedback_explore:g}."]


def report_few_shot(shots, best, args, seeds: int) -> None:
    """Print the few-shot table over the seeds done so far and write its result; `best` per
    seed: (the held-out family's best member, its reward)."""
    to_best = [next((n for n, r in curve if r >= 0.8 * b), None)
               for (curve, _), (_, b) in zip(shots, best, strict=True)]
    table = "\n".join([
        *few_shot_lines(shots, args),
        f"Episodes to reach 80 % of the reward of the family's best member alone (per seed "
        f"{', '.join(f'{n} {r:.3f}' for n, r in best)}): {to_best} (None: not within "
        f"{args.adapt}).",
        f"{seeds} seed(s), {args.episodes} training episodes per braider, skill prior "
        f"{args.skill_prior:g}, {args.holdout // 3} held-out prompts per difficulty. "
        f"{shared_machine_note(True)}"])
    print(table, flush=True)
    write_result(tagged("braid_learning", args.tag), {
        "few_shot": [{"curve": c, "reached_80pct": r} for c, r in shots],
        "best_member": best, "reached_80pct_of_best_member": to_best,
        "args": vars(args) | {"pool": str(args.pool), "keep": str(args.keep),
                              "braiders": str(args.braiders)}}, table)


def report(rows, entropy, rewards, probes, join_share, shots, args, seeds: int) -> None:
    """Print the tables over the seeds done so far and write the result JSON and RESULTS.md."""
    lines = ["| braider | holdout reward | holdout accuracy | holdout prompts joined |",
             "|---|---:|---:|---:|"]
    lines += [f"| {n} | {mean_std([r[0] for r in v])} | {mean_std([r[1] for r in v])} | "
              f"{mean_std([r[2] for r in v])} |" for n, v in rows.items()]
    lines += ["", "| head | decision entropy, first 4 updates | last 4 updates |",
              "|---|---:|---:|"]
    lines += [f"| {h} | {mean_std([a for a, _ in v])} | {mean_std([b for _, b in v])} |"
              for h, v in entropy.items()]
    lines += [f"| (training reward) | {mean_std([a for a, _ in rewards])} | "
              f"{mean_std([b for _, b in rewards])} |"]
    probe = np.array([[p[1] for p in run] for run in probes])
    probe_joins = np.array([[p[2] for p in run] for run in probes])
    shares = np.array(join_share)  # (seeds, updates, 2)
    lines += ["", "Holdout reward of greedy decisions over training (every head learning), after "
              "n updates: " + ", ".join(f"{p[0]}: {mean_std(probe[:, i])}"
                                        for i, p in enumerate(probes[0])),
              "Share of those holdout prompts where a member joins the lead: " + ", ".join(
                  f"{p[0]}: {mean_std(probe_joins[:, i])}" for i, p in enumerate(probes[0])),
              "Share of sampled training episodes that join (any member; a member of the task's "
              "domain), per block of 4 updates: " + ", ".join(
                  f"{mean_std(shares[:, i:i + 4, 0].mean(1))}; "
                  f"{mean_std(shares[:, i:i + 4, 1].mean(1))}"
                  for i in range(0, shares.shape[1], 4))]
    lines += ["", *few_shot_lines(shots, args),
              f"{seeds} seed(s), {args.episodes} training episodes per braider, skill prior "
              f"{args.skill_prior:g}, join prior {args.join_prior:g}, join by task "
              f"{args.join_by_task}, fusion banks {args.fusion_steps} steps per strategy on "
              f"{args.fusion_prompts} prompts, {args.holdout} holdout prompts. "
              + shared_machine_note(True)]
    table = "\n".join(lines)
    print(table, flush=True)
    write_result(tagged("braid_learning", args.tag), {
        "ablations": rows, "entropy": entropy, "training_reward": rewards,
        "holdout_reward_over_training": probes, "training_join_share": join_share,
        "few_shot": [{"curve": c, "reached_80pct": r} for c, r in shots],
        "args": vars(args) | {"pool": str(args.pool), "keep": str(args.keep),
                              "braiders": str(args.braiders)}}, table)


if __name__ == "__main__":
    main()
