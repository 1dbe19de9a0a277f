"""Pair banks: a fusion bank of its own for a family's specialist (the lead) and one member
joining it, trained on that family alone.

One shared bank per strategy must serve every team the braider can pick, so on average a join
gains about nothing and the braider never learns to join. Where the specialist leaves room (a
member answers prompts it misses), each (strategy, specialist, joiner) pair gets a copy of the
trained shared bank, fitted further on the family's prompts with every row that pair and random
layers, temperatures and top-k: the join is trained for the decisions the braider can make about
it, and the braid serves those rows with it (`BraidedLLM.add_pair_bank`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from evolora.braid.braided import BraidedLLM
from evolora.braid.config import FusionTrainConfig
from evolora.braid.fusion import STRATEGIES
from evolora.braid.fusion_train import fit_bank, team_plan, training_rows
from evolora.braid.generation import greedy_correct
from evolora.braid.plan import BraidSpec, Plan
from evolora.tasks import TaskGrid


def specialist(braid: BraidedLLM, family: str) -> int:
    """The member whose domain is `family` (else the one measured best on it)."""
    profiles = braid.pool.profiles
    own = [m for m, p in enumerate(profiles) if p.domain == family]
    if own:
        return own[0]
    return int(np.argmax([p.skill.get(family, -1.0) for p in profiles]))


def joiners(braid: BraidedLLM, lead: int, family: str, same_family: bool = False) -> list[int]:
    """The members that may join `lead` on `family`: every other one, or (`same_family`) those
    whose domain is `family` (e.g. its specialist made with another seed)."""
    return [m for m, p in enumerate(braid.pool.profiles)
            if m != lead and (not same_family or p.domain == family)]


def joiner_room(braid: BraidedLLM, lead: int, examples: list) -> dict[int, float]:
    """Per other member: the share of `examples` it answers (greedy exact match) and `lead`
    misses."""
    names, depth = braid.pool.names, braid.pool.depth
    prompts, answers = [e.prompt for e in examples], [e.answer for e in examples]

    def solo(m: int) -> torch.Tensor:
        plan = Plan.repeat(BraidSpec((names[m],)), len(examples), names, depth,
                           braid.pool.device)
        return greedy_correct(braid, prompts, answers, plan)

    alone = solo(lead)
    return {m: float(((solo(m) > 0) & (alone == 0)).float().mean())
            for m in range(braid.pool.size) if m != lead}


def pair_plan(braid: BraidedLLM, strategy: str, lead: int, joiner: int,
              config: FusionTrainConfig, temperatures: list[float], top_ks: list[int],
              examples: list, rng: np.random.Generator) -> Plan:
    """Every row `joiner` joining `lead` under `strategy`, with random layers, temperature and
    top-k."""
    chosen = np.zeros((len(examples), braid.pool.size), dtype=bool)
    chosen[:, [lead, joiner]] = True
    return team_plan(chosen, np.full(len(examples), lead), braid.slots, strategy, config,
                     temperatures, top_ks, rng, braid.pool.device)


def train_pair_banks(braid: BraidedLLM, families: list[str], difficulties: list[int],
                     config: FusionTrainConfig, temperatures: list[float], top_ks: list[int],
                     seed: int, fraction: float,
                     on_step: Callable[[str, int, float], None] | None = None,
                     same_domain: bool = False) -> list[dict]:
    """Add and train the pair banks of every pair family among `families` (each strategy's
    shared bank trained already); returns one record per pair (family, lead, joiner, room).
    Only joiners with room (> 0) get banks; with `same_domain`, only members whose domain is the
    family (e.g. its specialist made with another seed)."""
    made = []
    for k, family in enumerate(f for f in config.pair_families if f in families):
        grid = TaskGrid([family], difficulties)
        rng = np.random.default_rng([seed, k, 17])
        lead = specialist(braid, family)
        probe = training_rows(grid, rng, config.pair_probe, config.prompts, fraction)
        room = joiner_room(braid, lead, probe)
        ranked = sorted(room, key=lambda m: -room[m])
        allowed = [m for m in ranked
                   if room[m] > 0 and m in joiners(braid, lead, family, same_domain)]
        for joiner in allowed[:config.pair_joiners]:
            made.append({"family": family, "lead": braid.pool.names[lead],
                         "joiner": braid.pool.names[joiner], "room": room[joiner]})
            for name in STRATEGIES:
                if name not in braid.banks:
                    continue
                bank = braid.add_pair_bank(name, lead, joiner)
                tag = f"{name}:{braid.pool.names[lead]}+{braid.pool.names[joiner]}"

                plan_for = partial(pair_plan, braid, name, lead, joiner, config, temperatures,
                                   top_ks)

                def log(step, loss, tag=tag):
                    if on_step is not None:
                        on_step(tag, step, loss)

                fit_bank(braid, bank, grid, plan_for, config.pair_steps, config.batch,
                         config.pair_lr, config.prompts, fraction, rng, log)
    return made
