"""Can any mixture of a lead and one joiner collect the room between them? (issue: braid)

Trained fusion banks make a join gain about nothing on the default pool (`braid_join_gain`).
This asks whether the pool leaves fusion anything to find: for every family, its specialist (the
lead) and every other member, on the evaluation prompts (holdout prompts outside the braider's
selection share), greedy exact match of

- the lead alone, the joiner alone, and the pair's oracle (either member right: the room a join
  could collect);
- parameter-free output mixtures of the two next-token distributions, decoded greedily: fixed
  lead weights 0.5 / 0.7 / 0.88 (0.88: an untrained bank's), a token-level confidence gate
  (each model weighted by softmax(beta x its top log-probability), beta 1 / 3 / 10), and the
  logit average (for two models it decodes as the product of experts does: the braid's
  output-level strategies);
- a per-prompt confidence pick: each member answers alone and the answer with the higher mean
  log-probability per token is kept (both members run: a pair's compute).

The best figure over joiners and mixtures is picked on the same prompts it is scored on: an upper
bound on what such a mixture collects, not an estimate.

`--joiners same-family` measures only joiners whose domain is the lead's family (e.g. the same
family's specialist made with another seed, in a pool from `evolora braid pool combine`): a seed
ensemble, whose members both know the family.

    python benchmarks/braid_join_ceiling.py [--pool runs/braid-pool] [--seeds 3] [--per-cell 40]
        [--joiners all|same-family] [--tag NAME]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from _common import add_tag_argument, mean_std, shared_machine_note, tagged, write_result

from evolora.braid import pair_train
from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FAMILIES
from evolora.braid.generation import answer_logprobs, exact_match, generate, teacher_forced
from evolora.braid.plan import BraidSpec, Plan
from evolora.braid.pool import load_pool
from evolora.braid.trainer import evaluation_prompts
from evolora.tasks import TaskGrid

WEIGHTS = (0.5, 0.7, 0.88)
BETAS = (1.0, 3.0, 10.0)


@torch.no_grad()
def member_logprobs(braid: BraidedLLM, examples: list, members: list[int]):
    """Each of `members`' next-token log-probs on prompt + answer (B, T, M, V), the tokens that
    come next (B, T) and where those are the answer's (B, T)."""
    pool = braid.pool
    prompts, answers = [e.prompt for e in examples], [e.answer + "\n" for e in examples]
    runs = [teacher_forced(braid, prompts, answers, Plan.repeat(
        BraidSpec((pool.names[m],)), len(examples), pool.names, pool.depth, pool.device))
            for m in members]
    return torch.stack([logp for logp, _, _ in runs], dim=2), runs[0][1], runs[0][2]


@torch.no_grad()
def confidence_pick(braid: BraidedLLM, examples: list, members: list[int]
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per one of `members`: each prompt's greedy answer right (B, M) and its mean log-prob per
    token."""
    pool = braid.pool
    prompts = [e.prompt for e in examples]
    right, conf = [], []
    for name in (pool.names[m] for m in members):
        plan = Plan.repeat(BraidSpec((name,)), len(examples), pool.names, pool.depth,
                           pool.device)
        answers = generate(braid, prompts, plan, max_new_tokens=40)
        right.append(torch.tensor([float(a.strip() == e.answer.strip())
                                   for a, e in zip(answers, examples, strict=True)]))
        conf.append(answer_logprobs(braid, prompts, [a + "\n" for a in answers], plan).cpu())
    return torch.stack(right, 1), torch.stack(conf, 1)


def one_seed(braid: BraidedLLM, seed: int, per_cell: int, which: str = "all") -> dict:
    """Per family (with a joiner) and joiner: gain over the lead of the oracle and of every
    mixture."""
    names = braid.pool.names
    out = {}
    for family in FAMILIES:
        lead = pair_train.specialist(braid, family)
        joiners = pair_train.joiners(braid, lead, family, which == "same-family")
        if not joiners:
            continue
        members = [lead, *joiners]  # lead at 0; joiner joiners[i] at i + 1
        examples = evaluation_prompts(TaskGrid([family], [1, 2, 3]), per_cell, seed, 0.4)
        logp, target, answer = member_logprobs(braid, examples, members)
        right, conf = confidence_pick(braid, examples, members)
        alone = exact_match(logp[:, :, 0], target, answer)
        rows = {"lead": float(alone.mean()), "prompts": len(examples), "joiners": {}}
        for j, member in enumerate(joiners, 1):
            pair = logp[:, :, [0, j]]  # (B, T, 2, V)
            solo = exact_match(logp[:, :, j], target, answer)
            gains = {"oracle": torch.maximum(alone, solo), "joiner alone": solo}
            for w in WEIGHTS:
                log_w = torch.log(torch.tensor([w, 1 - w], device=pair.device))
                gains[f"weight {w}"] = exact_match(torch.logsumexp(pair + log_w[:, None], 2),
                                             target, answer)
            top = pair.max(-1).values  # (B, T, 2): each model's top log-prob per token
            for beta in BETAS:
                log_w = torch.log_softmax(beta * top, -1)
                gains[f"confidence gate {beta:g}"] = exact_match(
                    torch.logsumexp(pair + log_w[..., None], 2), target, answer)
            gains["logit average"] = exact_match(pair.sum(2), target, answer)
            rows["joiners"][names[member]] = {k: float(v.mean() - alone.mean())
                                              for k, v in gains.items()}
            picked = torch.where(conf[:, j] > conf[:, 0], right[:, j], right[:, 0])
            rows["joiners"][names[member]]["confidence pick"] = float(picked.mean()
                                                                      - right[:, 0].mean())
        out[family] = rows
    return out


def summarise(runs: list[dict]) -> tuple[str, dict]:
    """Per family: the room, the best and mean gain of each mixture kind over joiners, and the
    logit average's gain with the joiner that leaves most room."""
    families = [f for f in FAMILIES if f in runs[0]]
    kinds = [k for k in next(iter(runs[0][families[0]]["joiners"].values()))
             if k not in ("oracle", "joiner alone")]
    lines = ["| family | lead alone | room (best joiner's oracle gain) | best mixture gain "
             "(kind, joiner; picked on the scored prompts) | mean gain over joiners and "
             "mixtures | logit average gain (room's joiner) | room's joiner alone |",
             "|---|---:|---:|---|---:|---:|---:|"]
    figures = {}
    for family in families:
        joiners = list(runs[0][family]["joiners"])

        def gain(j, k, family=family):
            return [r[family]["joiners"][j][k] for r in runs]

        room = max(joiners, key=lambda j: np.mean(gain(j, "oracle")))
        best = max(((j, k) for j in joiners for k in kinds), key=lambda p: np.mean(gain(*p)))
        mean = float(np.mean([np.mean(gain(j, k)) for j in joiners for k in kinds]))
        lead = [r[family]["lead"] for r in runs]
        figures[family] = {"lead": float(np.mean(lead)),
                           "room": float(np.mean(gain(room, "oracle"))), "room_joiner": room,
                           "best": list(best), "best_gain": float(np.mean(gain(*best))),
                           "mean_gain": mean,
                           "logit_average_gain": float(np.mean(gain(room, "logit average"))),
                           "room_joiner_alone": float(np.mean(gain(room, "joiner alone")))}
        lines.append(f"| {family} | {mean_std(lead)} | "
                     f"{mean_std(gain(room, 'oracle'), signed=True)} ({room}) | "
                     f"{mean_std(gain(*best), signed=True)} ({best[1]}, {best[0]}) | "
                     f"{mean:+.3f} | {mean_std(gain(room, 'logit average'), signed=True)} | "
                     f"{mean_std(gain(room, 'joiner alone'), signed=True)} |")
    return "\n".join(lines), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, default=Path("runs/braid-pool"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-cell", type=int, default=40,
                        help="distinct evaluation prompts per (family, difficulty) cell")
    parser.add_argument("--joiners", choices=("all", "same-family"), default="all",
                        help="every other member joins, or only those of the lead's family")
    add_tag_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    braid = BraidedLLM(load_pool(args.pool))  # members alone: no bank is used
    runs = [one_seed(braid, seed, args.per_cell, args.joiners) for seed in range(args.seeds)]
    if not runs[0]:
        raise SystemExit(f"No family of {FAMILIES} has a joiner of kind {args.joiners!r} in "
                         f"{args.pool}.")
    table, figures = summarise(runs)
    text = "\n".join([
        table, "",
        f"{args.seeds} seed(s) (each its own evaluation prompts), about "
        f"{np.mean([r[f]['prompts'] for r in runs for f in r]):.0f} prompts per family; "
        f"lead = the family's own specialist; joiners: {args.joiners}; mixtures of the lead and "
        f"one joiner: fixed lead weights {', '.join(map(str, WEIGHTS))}, a token-level "
        f"confidence gate (beta {', '.join(f'{b:g}' for b in BETAS)}), the logit average and a "
        f"per-prompt confidence pick. {shared_machine_note()}"])
    print(text, flush=True)
    write_result(tagged("braid_join_ceiling", args.tag),
                 {"figures": figures, "runs": runs, "args": vars(args) | {"pool": str(args.pool)}},
                 text)


if __name__ == "__main__":
    main()
