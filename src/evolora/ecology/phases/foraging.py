"""Foraging: active organelles solve tasks of the cells the bandit chose, paired with the merged
adapter on the same prompts, and are paid by the market for what they solve."""

from __future__ import annotations

import time

import numpy as np

from evolora.ecology.colony import MERGED_SLOT
from evolora.ecology.energy import Compute, apply, compute_cost, settle_episode
from evolora.ecology.learning import target_lengths
from evolora.ecology.organelle import Organelle, cell_key, in_niche
from evolora.ecology.roles import Role
from evolora.ecology.routing import thompson_route
from evolora.tasks import score


def forage(eco, active: list[Organelle]) -> list[dict]:
    """Serve the bandit's cells: each active organelle solves tasks on its routed cell, and the
    merged adapter solves the same prompts as the paired control. Returns the episode records."""
    if not active:
        return []
    grid, env = eco.config.grid, eco.config.environment
    cells = eco.bandit.select(grid.cells_per_generation, eco.rng)
    jobs = [(o, organelle_cell(eco, o, cells)) for o in active]
    examples = [
        [eco.example(cell, Role.select) for _ in range(grid.episodes_per_organelle)]
        for _, cell in jobs
    ]
    flat = [ex for batch in examples for ex in batch]
    slots = [o.slot for (o, _), batch in zip(jobs, examples, strict=True) for _ in batch]
    t0 = time.perf_counter()
    completions = eco.host.generate(
        [ex.prompt for ex in flat] * 2,
        max_new_tokens=grid.max_new_tokens,
        adapters=eco.population,
        adapter_ids=slots + [MERGED_SLOT] * len(flat),
    )
    seconds = (time.perf_counter() - t0) / len(completions)
    treatment, control = completions[: len(flat)], completions[len(flat) :]
    prompt_tokens = target_lengths(eco.host, [ex.prompt for ex in flat])
    answer_tokens = target_lengths(eco.host, treatment)

    records, i = [], 0
    by_cell: dict = {}
    for (o, cell), batch in zip(jobs, examples, strict=True):
        gen_t, gen_c = [], []
        for ex in batch:
            reward, baseline = score(ex, treatment[i]), score(ex, control[i])
            success = reward >= 1.0
            flops = eco.flops_per_token * (prompt_tokens[i] + answer_tokens[i] + 1)
            cost = compute_cost(Compute(flops, seconds, eco.adapter_params), eco.config.energy)
            books = settle_episode(eco.market.prices[cell], reward, success, cost, env)
            o.energy = apply(o.energy, books.net, eco.config.energy.cap)
            o.revenue += books.revenue
            o.cost += books.cost
            o.record(cell, success, reward, baseline, eco.config.assimilation_tuning.window)
            gen_t.append(reward)
            gen_c.append(baseline)
            by_cell.setdefault(cell, []).append((success, books.revenue))
            records.append(
                {
                    "generation": eco.generation,
                    "attempt": eco.attempt,
                    "organelle": o.id,
                    "cell": cell_key(cell),
                    "prompt": ex.prompt,
                    "answer": ex.answer,
                    "completion": treatment[i],
                    "reward": reward,
                    "control_reward": baseline,
                    "success": success,
                    "price": eco.market.prices[cell],
                    "revenue": books.revenue,
                    "cost": books.cost,
                    "roi": books.roi,
                    "energy": o.energy,
                }
            )
            i += 1
        if np.mean(gen_t) > np.mean(gen_c):
            o.wins += 1
    for cell, outcomes in by_cell.items():
        eco.market.update(cell, float(np.mean([s for s, _ in outcomes])))
        eco.bandit.observe(cell, float(np.mean([r for _, r in outcomes])), n=len(outcomes))
    for record in records:
        eco.write("episodes", record)
    return records


def organelle_cell(eco, organelle: Organelle, chosen: list):
    """The cell an organelle serves this generation: Thompson sampling on its own successes
    over the bandit's chosen cells in its niche, or, when none is chosen there, the niche's
    cell the bandit ranks highest."""
    allowed = [c for c in chosen if in_niche(organelle.niche, c)]
    if not allowed:
        scores = eco.bandit.scores()
        niche = eco.niche_cells(organelle.niche)
        allowed = [max(niche, key=lambda c: scores[eco.bandit.cells.index(c)])]
    successes, failures = organelle.success_counts(allowed)
    pick = thompson_route(
        np.array([successes], dtype=float), np.array([failures], dtype=float), eco.rng
    )[0]
    return allowed[pick]
