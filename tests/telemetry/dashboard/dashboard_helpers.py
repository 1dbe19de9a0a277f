"""An ecology-shaped run folder whose streams a dashboard test writes itself."""

from __future__ import annotations

from evolora.telemetry import RunDir

CONFIG = {
    "seed": 0,
    "host": "builtin",
    "generations": 30,
    "grid": {"families": ["math"], "difficulties": [1]},
    "evaluation": {"per_cell": 10, "every": 2},
}


def summary(generation: int, attempt: int = 0) -> dict:
    """A generation summary with the fields the ecology's panels draw."""
    return {
        "generation": generation,
        "attempt": attempt,
        "population/size": 4 + generation % 3,
        "population/active": 4,
        "population/effective": 3.5,
        "population/species_shares": {"1": 0.5, "2": 0.5},
        "energy/mean": 5.0 + generation,
        "energy/total": 20.0 + generation,
        "energy/gini": 0.1 * (generation % 4),
        "reward/treatment": 0.5,
        "reward/control": 0.4,
        "market/prices": {"math:1": 1.0 + 0.1 * generation},
        "assimilation/merges": 0,
    }


def write_generation(run: RunDir, generation: int, attempt: int = 0) -> None:
    """Append one generation's records to the run's streams, as the ecology does."""
    run.stream("episodes").append({"generation": generation, "attempt": attempt, "roi": 1.5})
    run.stream("gen_summaries").append(summary(generation, attempt))
    if generation % 2 == 0:
        overall = {"overall": 0.5, "family": {"math": 0.5}}
        run.stream("evaluations").append(
            {"generation": generation, "attempt": attempt, "host": overall, "best": overall,
             "merged": overall, "routed": {"overall": 0.6, "family": {"math": 0.6}}}
        )
    run.stream("assimilation").append(
        {"generation": generation, "attempt": attempt, "organelle": 1, "passed": False,
         "uplift": 0.01, "reasons": ["energy 1.00 below gate 2.00"]}
    )
