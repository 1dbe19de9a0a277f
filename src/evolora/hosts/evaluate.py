"""Evaluate a host on task examples: greedy completions scored per family x difficulty."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from rich.table import Table

from evolora.hosts.host import Host
from evolora.hosts.routed import Routed
from evolora.tasks import Example, TaskGrid, score

DEFAULT_MAX_NEW_TOKENS = 96


def grid_examples(grid: str, n_per_cell: int, seed: int, split: str = "holdout") -> list[Example]:
    """`n_per_cell` examples of every cell of the named grid, from `split`, seeded."""
    task_grid = TaskGrid.named(grid)
    rng = np.random.default_rng(seed)
    return [
        task_grid.sample(rng, cell, split) for cell in task_grid.cells for _ in range(n_per_cell)
    ]


def evaluate(
    host: Host,
    examples: list[Example],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int | None = None,
    routed: Routed | None = None,
) -> dict[str, Any]:
    """Greedy completions of every example, scored; accuracy (score == 1) and mean score per cell.

    With `routed` (see hosts/routed.py) each example goes through the adapter serving its cell.
    Returns a JSON-ready dict: host, n, accuracy, mean_score and `cells` (one entry per family x
    difficulty with n, accuracy and mean_score).
    """
    route = {}
    if routed is not None:
        route = {
            "adapters": routed.population,
            "adapter_ids": [routed.slot_for(e.family, e.difficulty) for e in examples],
        }
    completions = host.generate(
        [e.prompt for e in examples], max_new_tokens=max_new_tokens, batch_size=batch_size, **route
    )
    scores = [float(score(e, c)) for e, c in zip(examples, completions, strict=True)]
    by_cell: dict[tuple[str, int], list[float]] = defaultdict(list)
    for example, value in zip(examples, scores, strict=True):
        by_cell[(example.family, example.difficulty)].append(value)
    cells = [
        {
            "family": family,
            "difficulty": difficulty,
            "n": len(values),
            "accuracy": _mean([v == 1.0 for v in values]),
            "mean_score": _mean(values),
        }
        for (family, difficulty), values in sorted(by_cell.items())
    ]
    return {
        "host": host.name,
        "n": len(examples),
        "accuracy": _mean([v == 1.0 for v in scores]),
        "mean_score": _mean(scores),
        "max_new_tokens": max_new_tokens,
        "cells": cells,
        "samples": [
            {"prompt": e.prompt, "answer": e.answer, "completion": c}
            for e, c in list(zip(examples, completions, strict=True))[
                :: max(1, len(examples) // 10)
            ]
        ],
    }


def _mean(values: list[float] | list[bool]) -> float:
    return round(float(np.mean(values)), 4) if values else 0.0


def accuracy_table(result: dict[str, Any]) -> Table:
    """A rich table: one row per family, one column per difficulty, cells showing accuracy."""
    difficulties = sorted({c["difficulty"] for c in result["cells"]})
    families = sorted({c["family"] for c in result["cells"]})
    lookup = {(c["family"], c["difficulty"]): c for c in result["cells"]}
    table = Table(title=f"{result['host']}: accuracy (exact) per family x difficulty")
    table.add_column("family")
    for d in difficulties:
        table.add_column(f"d{d}", justify="right")
    table.add_column("all", justify="right")
    for family in families:
        row = [lookup.get((family, d)) for d in difficulties]
        n = sum(c["n"] for c in row if c)
        overall = sum(c["accuracy"] * c["n"] for c in row if c) / max(1, n)
        table.add_row(
            family, *[f"{c['accuracy']:.2f}" if c else "-" for c in row], f"{overall:.2f}"
        )
    table.caption = (
        f"n={result['n']}  accuracy={result['accuracy']:.3f}  mean score={result['mean_score']:.3f}"
    )
    return table


def markdown_table(result: dict[str, Any]) -> str:
    """The same accuracy table as Markdown (for model cards and RESULTS.md)."""
    difficulties = sorted({c["difficulty"] for c in result["cells"]})
    families = sorted({c["family"] for c in result["cells"]})
    lookup = {(c["family"], c["difficulty"]): c for c in result["cells"]}
    lines = [
        "| family | " + " | ".join(f"d{d}" for d in difficulties) + " |",
        "|---|" + "---:|" * len(difficulties),
    ]
    for family in families:
        cells = [lookup.get((family, d)) for d in difficulties]
        lines.append(
            f"| {family} | "
            + " | ".join(f"{c['accuracy']:.2f}" if c else "-" for c in cells)
            + " |"
        )
    return "\n".join(lines)
