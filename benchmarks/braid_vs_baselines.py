"""MetaBraider against single models and the usual ways of combining them (issue: braid).

For each seed: train the fusion banks (models frozen; selection prompts), train a MetaBraider by
REINFORCE (rewarded on selection prompts: a share of the holdout split), then score on evaluation
prompts (the rest of the holdout split, distinct prompts per cell; greedy exact match, by a
teacher-forced check that equals greedy decoding): every single model, the best single model, a
uniform logit ensemble, a linear LoRA merge of the specialists, each family sent to its own
specialist, each family (and each sub-type: family, difficulty and problem kind) sent to the
member best on it on selection prompts, a learned
one-model-per-prompt router (RouteLLM-style classifier on the host's prompt embedding, trained on
selection prompts), each fixed fusion strategy over the whole pool, the MetaBraider at full and
at half budget, and the oracle that picks the best single model per prompt. Cost per
answer is compute per token as a share of running every pool model. Per family, the MetaBraider,
the own specialist, the best member per sub-type picked on the evaluation prompts themselves (an
upper bound for a sub-type router) and the oracle show where the gap to the oracle sits.

    python benchmarks/braid_vs_baselines.py [--pool runs/braid-pool] [--seeds 3] [--episodes 1280]
        [--pair-steps N] [--no-curriculum] [--skill-prior W] [--lr LR] [--join-prior W]
        [--join-by-task] [--tag NAME]
        [--keep DIR]   # each finished seed saved in DIR; seeds found there are not run again
"""

from __future__ import annotations

import argparse
import time
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

from evolora.braid.braided import BraidedLLM
from evolora.braid.braider import HEADS, MetaBraider
from evolora.braid.config import FAMILIES, BraiderConfig, PoolMakeConfig, TrainConfig
from evolora.braid.evaluate import braider_outcome, correct, evaluate_braider
from evolora.braid.fusion import STRATEGIES, strategy_names
from evolora.braid.plan import BraidSpec, Plan
from evolora.braid.pool import (
    ModelPool,
    adapter_factors,
    load_adapter_tensors,
    with_adapter,
)
from evolora.braid.pool_make import ensure_pool
from evolora.braid.reinforce import Learner
from evolora.braid.reward import compute_share
from evolora.braid.trainer import (
    check_profile_prompts,
    evaluation_prompts,
    role_prompts,
    run_episodes,
    train_banks,
    train_step,
)
from evolora.ecology.roles import Role
from evolora.lora import merge
from evolora.tasks import TaskGrid

PAIR_FAMILIES = ["logic", "math", "sequence"]  # where the gap to the oracle lies


def cost(braid: BraidedLLM, spec: BraidSpec) -> float:
    """Compute share of one fixed braid."""
    plan = Plan.repeat(spec, 1, braid.pool.names, braid.pool.depth, braid.pool.device)
    return float(compute_share(plan, braid.pool.profiles)[0])


def merged_model(pool: ModelPool, folder: Path) -> ModelPool:
    """A one-member pool: the host with the linear (exact) merge of every specialist adapter."""
    tensors = load_adapter_tensors(folder)
    specialists = [p for p in pool.profiles if p.kind == "adapter"]
    merged = merge([adapter_factors(tensors, p.name) for p in specialists], method="linear")
    scale = specialists[0].alpha / specialists[0].rank
    host = pool.hosts[pool.names.index("host")]
    member = with_adapter(host, merged.tensors, scale, "linear-merge")
    return ModelPool([member], [pool.profiles[0].__class__(**{
        **pool.profiles[0].describe(), "name": "linear-merge", "kind": "adapter"})])


def prompt_vectors(pool: ModelPool, prompts: list[str]) -> torch.Tensor:
    """Mean input embedding of each prompt's tokens under the host (the router's features)."""
    from evolora.hosts.generation import encode

    embed = pool.stacks[0].inner.embed_tokens
    rows = [embed(torch.tensor(ids, device=pool.device)).mean(0)
            for ids in encode(pool.tokenizer, prompts, special=True)]
    return torch.stack(rows).detach()


def train_router(x: torch.Tensor, y: torch.Tensor, seed: int, steps: int = 400) -> torch.nn.Module:
    """A logistic classifier per model: P(model answers this prompt right | prompt embedding)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, y.shape[1])).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def subtype(example) -> tuple:
    """An example's sub-type: family, difficulty and problem kind."""
    return example.family, example.difficulty, example.meta.get("kind")


def subtype_picks(labels: torch.Tensor, train_set, family_picks: list[int], examples) -> list[int]:
    """Per example, the member best on its sub-type among the `labels` (0/1 per train example and
    member); the family's pick where no member beats it on the sub-type or it was never seen."""
    picks = {}
    for key in {subtype(e) for e in train_set}:
        hits = labels[[i for i, e in enumerate(train_set) if subtype(e) == key]].float().mean(0)
        family = family_picks[FAMILIES.index(key[0])]
        picks[key] = family if hits[family] >= hits.max() else int(hits.argmax())
    return [picks.get(subtype(e), family_picks[FAMILIES.index(e.family)]) for e in examples]


def family_gaps(singles: torch.Tensor, braider: torch.Tensor, own: torch.Tensor,
                examples) -> dict[str, dict[str, float]]:
    """Per family, accuracy of: the MetaBraider; the family's own specialist; the member best on
    each sub-type (difficulty and problem kind), picked on these evaluation prompts themselves, so
    an upper bound for any router that tells sub-types apart; and the oracle per prompt. The
    oracle's lead over the sub-type bound is complementarity no sub-type router can learn (on a
    true/false family, mostly members guessing right by luck)."""
    singles, rows = singles.float().cpu(), torch.arange(len(examples))
    out = {}
    for family in FAMILIES:
        idx = [i for i, e in enumerate(examples) if e.family == family]
        kinds: dict[tuple, list[int]] = {}
        for i in idx:
            kinds.setdefault(subtype(examples[i]), []).append(i)
        by_kind = sum(float(singles[group].mean(0).max()) * len(group) for group in kinds.values())
        out[family] = {"braider": float(braider[idx].float().mean()),
                       "own": float(singles[rows[idx], own[idx]].mean()),
                       "best_per_subtype": by_kind / len(idx),
                       "oracle": float(singles[idx].max(1).values.mean())}
    return out


@torch.no_grad()
def routing(braid: BraidedLLM, braider: MetaBraider, examples, config: TrainConfig) -> dict:
    """Shares of the braider's greedy holdout decisions that lead with the task family's own
    specialist, that run one model alone, that join another member to the lead (per family),
    that join a member of the family's own domain (e.g. its specialist made with another seed),
    and that lead with each member (per family)."""
    decision, _, _ = run_episodes(braid, braider, examples, [1.0] * len(examples),
                                  [2.0] * len(examples), config, greedy=True)
    leads = [braider.members[i] for i in decision.lead.tolist()]
    own = np.mean([lead == f"{ex.family}-lora" for lead, ex in zip(leads, examples, strict=True)])
    domains = [p.domain for p in braid.pool.profiles]
    joined = decision.models.sum(-1) > 1
    same = [any(on and m != lead and domains[m] == ex.family
                for m, on in enumerate(decision.models[i].tolist()))
            for i, (lead, ex) in enumerate(zip(decision.lead.tolist(), examples, strict=True))]
    return {"lead_is_family_specialist": float(own),
            "single_model": float((decision.models.sum(-1) == 1).float().mean()),
            "same_domain_join": float(np.mean(same)),
            "join_strategies": {name: int(((decision.strategy == k) & joined).sum())
                                for k, name in enumerate(strategy_names())},
            "join_by_family": {f: float(np.mean([int(decision.models[i].sum()) > 1 for i, ex in
                                                 enumerate(examples) if ex.family == f]))
                               for f in FAMILIES},
            "lead_by_family": {f: {m: float(np.mean([lead == m for lead, ex in zip(
                leads, examples, strict=True) if ex.family == f])) for m in set(leads)}
                for f in FAMILIES}}


def one_seed(pool: ModelPool, pool_dir: Path, seed: int, args) -> dict:
    torch.manual_seed(seed)
    config = TrainConfig(seed=seed, pool=str(pool_dir), episodes=args.episodes, batch=args.batch,
                         curriculum=not args.no_curriculum,
                         **({} if args.lr is None else {"lr": args.lr}),
                         fusion={"steps": args.fusion_steps, "batch": 16,
                                 "prompts": args.fusion_prompts,
                                 "pair_families": PAIR_FAMILIES if args.pair_steps else [],
                                 "pair_steps": args.pair_steps},
                         braider={"join_prior": args.join_prior,
                                  "join_by_task": args.join_by_task,
                                  **({} if args.skill_prior is None else {
                                      "skill_prior": args.skill_prior})})
    check_profile_prompts(config)
    grid = TaskGrid(FAMILIES, config.difficulties)
    braid = BraidedLLM(pool)
    start = time.time()
    train_banks(braid, config)
    fusion_s = time.time() - start
    braider = MetaBraider(pool.names, pool.depth, config.braider, FAMILIES).to(pool.device)
    learner = Learner(braider, config.lr, config.entropy, config.value, config.feedback)
    updates = -(-config.episodes // config.batch)
    history = [train_step(braid, braider, learner, grid, config, u, updates, None)
               for u in range(updates)]
    braider_s = time.time() - start - fusion_s
    holdout = evaluation_prompts(grid, -(-args.holdout // len(grid.cells)), seed,
                                 config.selection_fraction)
    train_set = role_prompts(grid, np.random.default_rng([seed, 8]), args.router_train,
                             Role.select, config.selection_fraction)
    res: dict[str, tuple[float, float]] = {}
    singles = torch.stack([correct(braid, BraidSpec((n,)), holdout) for n in pool.names], 1)
    for j, name in enumerate(pool.names):
        res[name] = (float(singles[:, j].mean()), cost(braid, BraidSpec((name,))))
    best = max(pool.names, key=lambda n: res[n][0])
    res["best single"] = res[best]
    res["oracle (best single per prompt)"] = (float(singles.max(1).values.mean()),
                                              res[best][1])
    every = tuple(pool.names)
    for name in ("logit_average", "product_of_experts"):
        res[f"all models, {name}"] = (float(correct(braid, BraidSpec(every, (), name),
                                                    holdout).mean()), cost(braid, BraidSpec(every)))
    merged = BraidedLLM(merged_model(pool, pool_dir))
    res["linear LoRA merge"] = (float(correct(merged, BraidSpec(("linear-merge",)),
                                              holdout).mean()), res[best][1])
    labels = torch.stack([correct(braid, BraidSpec((n,)), train_set) for n in pool.names], 1)
    fam = [FAMILIES.index(e.family) for e in holdout]
    own = torch.tensor([pool.names.index(f"{e.family}-lora") for e in holdout])
    res["each family's own specialist"] = (float(singles[torch.arange(len(holdout)), own].mean()),
                                           res[best][1])
    picked = [max(range(pool.size), key=lambda m, f=f: float(labels[
        [i for i, e in enumerate(train_set) if e.family == f], m].mean())) for f in FAMILIES]
    res["best member per family (picked on selection prompts)"] = (
        float(singles[torch.arange(len(holdout)), [picked[f] for f in fam]].mean()), res[best][1])
    res["best member per sub-type (picked on selection prompts)"] = (float(singles[
        torch.arange(len(holdout)), subtype_picks(labels, train_set, picked, holdout)].mean()),
        res[best][1])
    router = train_router(prompt_vectors(pool, [e.prompt for e in train_set]),
                          labels.to(pool.device), seed)
    picks = router(prompt_vectors(pool, [e.prompt for e in holdout])).argmax(-1).cpu()
    res["learned router (one model per prompt)"] = (
        float(singles[torch.arange(len(holdout)), picks].mean()), res[best][1])
    layers = tuple(range(pool.depth))
    for name in STRATEGIES:
        spec = BraidSpec(every, layers, name, 1.0, 2)
        res[f"all models, {name} fusion"] = (float(correct(braid, spec, holdout).mean()),
                                             cost(braid, spec))
    episodes = braider_outcome(braid, braider, holdout, 1.0, config)
    res["MetaBraider"] = (float(episodes.scores.mean()), float(episodes.compute.mean()))
    res["MetaBraider, half budget"] = evaluate_braider(braid, braider, holdout, 0.5, config)
    return {"results": res, "best": best, "prompts": len(holdout), "fusion_s": fusion_s,
            "picked_by_family": {f: pool.names[picked[k]] for k, f in enumerate(FAMILIES)},
            "member_by_family": {f: {n: float(singles[[i for i, e in enumerate(holdout)
                                                       if e.family == f], j].float().mean())
                                     for j, n in enumerate(pool.names)} for f in FAMILIES},
            "braider_s": braider_s,
            "routing": routing(braid, braider, holdout, config),
            "families": family_gaps(singles, episodes.scores.cpu(), own, holdout),
            "reward_first": float(np.mean([h["reward/mean"] for h in history[:5]])),
            "reward_last": float(np.mean([h["reward/mean"] for h in history[-5:]])),
            "join_share": [(h["joins/share"], h["joins/same_domain"], h["joins/own_pair"])
                           for h in history],
            "relevant": {h: float(np.mean([x[f"relevant/{h}"] for x in history])) for h in HEADS},
            "entropy": {h: (history[0][f"entropy/{h}"], history[-1][f"entropy/{h}"])
                        for h in HEADS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("runs/braid-pool"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--holdout", type=int, default=100)
    parser.add_argument("--router-train", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=1280)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--fusion-steps", type=int, default=30,
                        help="bank steps per strategy")
    parser.add_argument("--fusion-prompts", choices=("learn", "select"), default="select",
                        help="prompts the banks learn on")
    parser.add_argument("--pair-steps", type=int, default=0, help="> 0: pair banks for the "
                        f"specialists of {', '.join(PAIR_FAMILIES)}, this many steps each")
    parser.add_argument("--join-prior", type=float, default=BraiderConfig().join_prior,
                        help="starting weight of the profiles' evidence that a member helps the "
                        "lead in its joining logit (0: joins learned from rewards alone)")
    parser.add_argument("--join-by-task", action="store_true",
                        help="the task token gives each member its own joining score")
    parser.add_argument("--no-curriculum", action="store_true", help="braider trained on every "
                        "difficulty from the start (default: easy difficulties first)")
    parser.add_argument("--lr", type=float, default=None,
                        help="the braider's learning rate (default: TrainConfig's)")
    parser.add_argument("--skill-prior", type=float, default=None, help="the braider's "
                        "starting weight of the profiles' skill (default: BraiderConfig's)")
    add_tag_argument(parser)
    add_keep_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pool = ensure_pool(args.pool, PoolMakeConfig())  # the default pool, cached on disk
    runs = []
    for seed in range(args.seeds):
        runs.append(kept_seed(args.keep, seed, partial(one_seed, pool, args.pool, seed, args)))
        shown = ", ".join(f"{k} {v[0]:.3f}" for k, v in runs[-1]["results"].items())
        print(f"seed {seed}: {shown}", flush=True)
        report(runs, args)


def report(runs: list[dict], args) -> None:
    """Print the table over the seeds done so far and write the result JSON and RESULTS.md."""
    names = list(runs[0]["results"])
    acc = {n: [r["results"][n][0] for r in runs] for n in names}
    comp = {n: [r["results"][n][1] for r in runs] for n in names}
    lines = ["| method | holdout accuracy | compute per token (share of full pool) |",
             "|---|---:|---:|"]
    lines += [f"| {n} | {mean_std(acc[n])} | {mean_std(comp[n], 3)} |" for n in names]
    route = {k: mean_std([r["routing"][k] for r in runs]) for k in
             ("lead_is_family_specialist", "single_model")}
    same = mean_std([r["routing"]["same_domain_join"] for r in runs])
    joins = ", ".join(f"{f} {mean_std([r['routing']['join_by_family'][f] for r in runs])}"
                      for f in FAMILIES)
    meta, best, oracle, routed = (np.array(acc[k]) for k in (
        "MetaBraider", "best single", "oracle (best single per prompt)",
        "best member per family (picked on selection prompts)"))
    half = np.array(acc["MetaBraider, half budget"])
    targets = {
        "metabraider_minus_best_single": mean_std(meta - best, signed=True),
        "metabraider_over_oracle": mean_std(meta / np.maximum(oracle, 1e-9)),
        "half_budget_minus_full": mean_std(half - meta, signed=True),
        "metabraider_minus_family_routing": mean_std(meta - routed, signed=True),
    }
    lines += ["", f"Targets: MetaBraider - best single = {targets['metabraider_minus_best_single']}"
              " (target >= +0.15); MetaBraider / oracle = "
              f"{targets['metabraider_over_oracle']} (target >= 0.95); half budget - full = "
              f"{targets['half_budget_minus_full']} (target >= -0.05); MetaBraider - best "
              f"member per family = {targets['metabraider_minus_family_routing']}.",
              f"MetaBraider's greedy holdout decisions: lead model is the task family's own "
              f"specialist in {route['lead_is_family_specialist']}, one model alone in "
              f"{route['single_model']}; share of prompts where a member joins the lead, per "
              f"family: {joins}; a member of the family's own domain joins in {same}; "
              "strategies of the joined prompts, over the seeds: " + ", ".join(
                  f"{k} {sum(r['routing']['join_strategies'][k] for r in runs)}"
                  for k in strategy_names()) + ".",
              f"{len(runs)} seed(s), {runs[0]['prompts']} evaluation prompts each (families "
              f"{', '.join(FAMILIES)}, difficulties 1-3); braider trained on {args.episodes} "
              f"episodes{' without a curriculum' if args.no_curriculum else ''}, fusion banks "
              f"{args.fusion_steps} steps per strategy on "
              f"{args.fusion_prompts} prompts"
              + (f", pair banks {args.pair_steps} steps each for the specialists of "
                 f"{', '.join(PAIR_FAMILIES)} and their two joiners with most room"
                 if args.pair_steps else "") + ", per seed. " + shared_machine_note(True)]
    lines += ["", "Braider training, first update -> last: decision entropy " + ", ".join(
        f"{h} {mean_std([r['entropy'][h][0] for r in runs])} -> "
        f"{mean_std([r['entropy'][h][1] for r in runs])}" for h in HEADS)
        + f"; training reward (first 5 updates -> last 5) "
        f"{mean_std([r['reward_first'] for r in runs])} -> "
        f"{mean_std([r['reward_last'] for r in runs])}."]
    share = np.array([r["join_share"] for r in runs])
    lines += ["Share of sampled training episodes that join (any member; a member of the task's "
              "domain; one of its domain joining a lead of its domain, e.g. a seed pair), per "
              "tenth of training: " + ", ".join(
                  "/".join(mean_std(block[..., i].mean(1)) for i in range(3))
                  for block in np.array_split(share, 10, axis=1))
              + f" (join prior {args.join_prior:g}, join by task {args.join_by_task}). Share of "
              "training episodes where each head's choice changed what ran: " + ", ".join(
                  f"{h} {mean_std([r['relevant'][h] for r in runs])}" for h in HEADS) + "."]
    if all("families" in r for r in runs):
        lines += ["", "Per family (where the gap to the oracle sits; the sub-type bound picks the "
                  "best member per difficulty and problem kind on the evaluation prompts "
                  "themselves):", "",
                  "| family | MetaBraider | own specialist | best member per sub-type | oracle "
                  "per prompt |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {f} | " + " | ".join(mean_std([r["families"][f][k] for r in runs]) for k in
                                           ("braider", "own", "best_per_subtype", "oracle")) + " |"
                  for f in FAMILIES]
    if all("member_by_family" in r for r in runs):
        names = list(runs[0]["member_by_family"][FAMILIES[0]])
        lines += ["", "Each member per family on the evaluation prompts:", "",
                  "| member | " + " | ".join(FAMILIES) + " |", "|---|" + "---:|" * len(FAMILIES)]
        lines += [f"| {n} | " + " | ".join(mean_std([r["member_by_family"][f][n] for r in runs])
                                           for f in FAMILIES) + " |" for n in names]
    if all("lead_by_family" in r["routing"] for r in runs):
        lines += ["", "Lead member per family on evaluation prompts (share of the family's "
                  "prompts; in brackets the member best on its selection prompts), per seed:", ""]
        lines += [f"- seed {seed}: " + "; ".join(
            f"{f} " + ", ".join(f"{m} {v:.2f}" for m, v in sorted(
                r["routing"]["lead_by_family"][f].items(), key=lambda kv: -kv[1]) if v > 0)
            + f" ({r['picked_by_family'][f]})" for f in FAMILIES) for seed, r in enumerate(runs)]
    table = "\n".join(lines)
    print(table, flush=True)
    figures = {"accuracy": acc, "compute": comp, "targets": targets, "runs": runs,
               "args": vars(args) | {"pool": str(args.pool), "keep": str(args.keep)}}
    write_result(tagged("braid_vs_baselines", args.tag), figures, table)


if __name__ == "__main__":
    main()
