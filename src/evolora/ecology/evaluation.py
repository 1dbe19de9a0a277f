"""Holdout evaluation of the frozen host, best organelle, merged adapter and routed colony."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from evolora.ecology.colony import HOST_SLOT, MERGED_SLOT, Colony
from evolora.ecology.organelle import Cell, cell_key, in_niche
from evolora.ecology.roles import Role, distinct_examples
from evolora.stats import paired_difference
from evolora.tasks import Example, TaskGrid, score

VARIANTS = ("host", "best", "merged", "routed")


def holdout_examples(
    grid: TaskGrid, per_cell: int, seed: int, selection_fraction: float = 0.0
) -> list[Example]:
    """A fixed evaluation set from the holdout split only, without the `selection_fraction`
    share a colony decides with (roles.py): `per_cell` distinct prompts of every cell (fewer
    where a cell has fewer distinct prompts than that: a repeated prompt would count one answer
    twice and shrink the standard error for nothing)."""
    rng = np.random.default_rng([seed, 7919])
    return [
        example
        for cell in grid.cells
        for example in distinct_examples(
            grid, rng, cell, Role.evaluate, selection_fraction, per_cell
        )
    ]


def exact_answers(scores: list[float]) -> list[float]:
    """1.0 for every fully correct answer (score 1), else 0.0: what accuracy counts."""
    return [float(s >= 1.0) for s in scores]


def best_organelle(colony: Colony):
    """The organelle that beat the merged adapter by most on the same prompts (ties: energy);
    None when no organelle has paired episodes.

    Raw scores would favour whoever happened to serve the easy cells; the paired edge does not.
    """
    scored = [o for o in colony.organelles if o.edge]
    if not scored:
        return None
    return max(scored, key=lambda o: (o.mean_edge(), o.energy))


def route_table(
    host,
    population,
    colony: Colony,
    route_examples: dict[Cell, list[Example]],
    max_new_tokens: int,
    z: float = 2.0,
    candidates: int = 3,
    pooled: bool = True,
) -> dict[Cell, int]:
    """The slot the routed colony sends each cell to (HOST_SLOT: the bare host).

    A cell's candidates are the organelles whose niche holds it (at most `candidates`, those with
    the largest foraging edge there). Each candidate, the merged adapter and the bare host answer
    the cell's routing prompts (selection prompts, never trained on) in one batched generation.
    The cell's fallback is the merged adapter, or the bare host where the host answers more of
    them (merges can cost a cell what they gain on others). A candidate qualifies for the cell
    when its paired accuracy edge over the fallback has a lower confidence bound (mean - z
    standard errors) above zero on the cell; or, with `pooled`, on all the routing prompts of
    its niche's cells together while its edge on the cell itself is not negative (a family
    specialist's gain spread over three cells is seen with three times the prompts). The cell
    goes to the qualifying candidate with the largest edge there, else to its fallback.
    """
    wanted = {}
    for cell in route_examples:
        pool = [o for o in colony.organelles if in_niche(o.niche, cell)]
        pool.sort(key=lambda o: -o.edge_bound(cell, 0.0)[0])
        wanted[cell] = [MERGED_SLOT, HOST_SLOT] + [o.slot for o in pool[:candidates]]
    jobs = [
        (slot, cell, k)
        for cell, slots in wanted.items()
        for slot in slots
        for k in range(len(route_examples[cell]))
    ]
    completions = host.generate(
        [route_examples[cell][k].prompt for _, cell, k in jobs],
        max_new_tokens=max_new_tokens,
        adapters=population,
        adapter_ids=[slot for slot, _, _ in jobs],
    )
    correct: dict[tuple[Cell, int], list[float]] = defaultdict(list)
    for (slot, cell, k), completion in zip(jobs, completions, strict=True):
        correct[(cell, slot)].append(float(score(route_examples[cell][k], completion) >= 1.0))

    fallback = {
        cell: HOST_SLOT
        if np.mean(correct[(cell, HOST_SLOT)]) > np.mean(correct[(cell, MERGED_SLOT)])
        else MERGED_SLOT
        for cell in wanted
    }

    def edge(slot: int, cells: list[Cell]) -> dict:
        return paired_difference(
            [x for c in cells for x in correct[(c, slot)]],
            [x for c in cells for x in correct[(c, fallback[c])]],
        )

    niche_cells = {
        o.slot: [c for c in wanted if o.slot in wanted[c][2:]] for o in colony.organelles
    }
    table = {}
    for cell, slots in wanted.items():
        best, best_edge = fallback[cell], 0.0
        for slot in slots[2:]:
            here = edge(slot, [cell])
            qualifies = here["mean"] - z * here["se"] > 0
            if pooled and not qualifies and here["mean"] >= 0:
                niche = edge(slot, niche_cells[slot])
                qualifies = niche["mean"] - z * niche["se"] > 0
            if qualifies and here["mean"] > best_edge:
                best, best_edge = slot, here["mean"]
        table[cell] = best
    return table


def evaluate(
    host,
    population,
    colony: Colony,
    examples: list[Example],
    max_new_tokens: int,
    host_scores: list[float] | None = None,
    routes: dict[Cell, int] | None = None,
) -> tuple[dict, dict[str, list[float]]]:
    """Accuracy of every variant on the examples (overall, per family and per cell), the paired
    differences from the host, and the routing table; and every variant's per-example scores.

    Each distinct (adapter, prompt) pair is generated once, in one batch; `host_scores` (the
    frozen host's scores on these examples, which never change) skips the host's share.
    """
    best = best_organelle(colony)
    slot_of = {
        "host": lambda ex: HOST_SLOT,
        "best": lambda ex: best.slot if best else MERGED_SLOT,
        "merged": lambda ex: MERGED_SLOT,
        "routed": lambda ex: (routes or {}).get((ex.family, ex.difficulty), MERGED_SLOT),
    }
    scored = {(HOST_SLOT, i): s for i, s in enumerate(host_scores or [])}
    wanted = {(slot_of[v](ex), i) for v in VARIANTS for i, ex in enumerate(examples)}
    pairs = sorted(wanted - scored.keys())
    completions = host.generate(
        [examples[i].prompt for _, i in pairs],
        max_new_tokens=max_new_tokens,
        adapters=population,
        adapter_ids=[slot for slot, _ in pairs],
    )
    for (slot, i), completion in zip(pairs, completions, strict=True):
        scored[(slot, i)] = score(examples[i], completion)
    scores = {
        variant: [scored[(slot_of[variant](ex), i)] for i, ex in enumerate(examples)]
        for variant in VARIANTS
    }
    correct = {v: exact_answers(values) for v, values in scores.items()}
    report = {variant: summarize(scores[variant], examples) for variant in VARIANTS}
    report["best_organelle"] = best.id if best else None
    report["routed_vs_host"] = paired_difference(correct["routed"], correct["host"])
    report["merged_vs_host"] = paired_difference(correct["merged"], correct["host"])
    # Cells the routed colony sends to an organelle; the others fall back to the merged adapter
    # or to the bare host.
    cells = sorted({(ex.family, ex.difficulty) for ex in examples})
    report["routes"] = {cell_key(c): (routes or {}).get(c, MERGED_SLOT) for c in cells}
    report["cells_routed_to_organelles"] = sum(
        slot not in (MERGED_SLOT, HOST_SLOT) for slot in report["routes"].values()
    )
    report["cells_routed_to_host"] = sum(slot == HOST_SLOT for slot in report["routes"].values())
    return report, scores


def slot_scores(
    host, population, slots: list[int], examples: list[Example], max_new_tokens: int
) -> list[list[float]]:
    """Every slot's score on every example (slot -1: the bare host), in one batched generation.

    Without a population only the bare host can be scored (`slots == [-1]`).
    """
    ids = [s for s in slots for _ in examples]
    completions = host.generate(
        [ex.prompt for ex in examples] * len(slots),
        max_new_tokens=max_new_tokens,
        adapters=population,
        adapter_ids=ids if population is not None else None,
    )
    n = len(examples)
    return [
        [score(ex, c) for ex, c in zip(examples, completions[k * n : (k + 1) * n], strict=True)]
        for k in range(len(slots))
    ]


def summarize(scores: list[float], examples: list[Example]) -> dict:
    """Accuracy (share of fully correct answers) overall with its standard error, per family and
    per cell, and the mean partial-credit score overall."""
    by_family, by_cell = defaultdict(list), defaultdict(list)
    correct = exact_answers(scores)
    for c, ex in zip(correct, examples, strict=True):
        by_family[ex.family].append(c)
        by_cell[cell_key((ex.family, ex.difficulty))].append(c)
    overall = float(np.mean(correct)) if correct else 0.0
    return {
        "overall": overall,
        "se": float(np.sqrt(overall * (1 - overall) / len(correct))) if correct else 0.0,
        "n": len(correct),
        "score": float(np.mean(scores)) if scores else 0.0,
        "family": {k: float(np.mean(v)) for k, v in by_family.items()},
        "cell": {k: float(np.mean(v)) for k, v in by_cell.items()},
    }
