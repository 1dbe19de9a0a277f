"""The ecology's charts, drawn by the dashboard (live) and by `evolora report` (PNG and HTML).

`figures` turns a run's de-duplicated streams into `{figure id: (title, [Panel, ...])}`; the
report draws them with matplotlib, the dashboard and `report --html` with Plotly.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from evolora.ecology.report import per_generation_mean, series
from evolora.telemetry.report import Panel

VARIANTS = ("host", "best", "merged", "routed")
Z95 = 1.96


def _by_name(summaries: Sequence[dict], key: str) -> dict[str, tuple[list[int], list[float]]]:
    """A per-generation mapping field (e.g. species shares) as one series per name."""
    out: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for s in summaries:
        for name, value in (s.get(key) or {}).items():
            out[name][0].append(s["generation"])
            out[name][1].append(value)
    return dict(sorted(out.items()))


def holdout_size(config: Mapping[str, Any]) -> int | None:
    """Holdout examples per evaluation: per_cell x families x difficulties of the config."""
    try:
        grid = config["grid"]
        return config["evaluation"]["per_cell"] * len(grid["families"]) * len(grid["difficulties"])
    except (KeyError, TypeError):
        return None


def accuracy_panel(evaluations: Sequence[dict], n: int | None) -> Panel:
    """Holdout accuracy of each variant with a 95% normal-approximation interval over n items."""
    series, errors = {}, {}
    for variant in VARIANTS:
        kept = [e for e in evaluations if isinstance(e.get(variant), dict)]
        values = [float(e[variant]["overall"]) for e in kept]
        series[variant] = ([e["generation"] for e in kept], values)
        size = n or 0
        errors[variant] = [
            Z95 * math.sqrt(max(p * (1 - p), 0.0) / size) if size else 0.0 for p in values
        ]
    return Panel("holdout accuracy (95% interval)", series, errors=errors)


def attempts_panel(attempts: Sequence[dict]) -> Panel:
    """Each assimilation attempt's uplift, passed or refused, hovering with its gates' reasons."""
    series: dict[str, tuple[list[int], list[float]]] = {"merged": ([], []), "refused": ([], [])}
    labels: dict[str, list[str]] = {"merged": [], "refused": []}
    for record in attempts:
        outcome = "merged" if record.get("passed") else "refused"
        series[outcome][0].append(record["generation"])
        series[outcome][1].append(record.get("uplift") or 0.0)
        reasons = "; ".join(record.get("reasons") or []) or "every gate passed"
        labels[outcome].append(f"organelle {record.get('organelle')}: {reasons}")
    return Panel("uplift of each attempt", series, kind="markers", labels=labels)


def figures(
    summaries: Sequence[dict],
    episodes: Sequence[dict],
    evaluations: Sequence[dict],
    attempts: Sequence[dict],
    config: Mapping[str, Any],
) -> dict[str, tuple[str, list[Panel]]]:
    """Every ecology chart: energy and Gini, ROI, population and species, prices per cell,
    accuracy with intervals, assimilation attempts with their gates."""
    shares = _by_name(summaries, "population/species_shares")
    species = {f"species {k}": v for k, v in shares.items()}
    return {
        "energy": (
            "Energy and its Gini coefficient",
            [
                Panel(
                    "energy",
                    {
                        "mean": series(summaries, "energy/mean"),
                        "total": series(summaries, "energy/total"),
                    },
                ),
                Panel("energy Gini", {"Gini": series(summaries, "energy/gini")}),
            ],
        ),
        "roi": (
            "Return on investment and rewards",
            [
                Panel("mean ROI (revenue / cost)", {"mean": per_generation_mean(episodes, "roi")}),
                Panel(
                    "reward",
                    {
                        "treatment": series(summaries, "reward/treatment"),
                        "control": series(summaries, "reward/control"),
                    },
                ),
            ],
        ),
        "population": (
            "Population and effective size",
            [
                Panel(
                    "organelles",
                    {
                        "size": series(summaries, "population/size"),
                        "active": series(summaries, "population/active"),
                        "effective": series(summaries, "population/effective"),
                    },
                ),
            ],
        ),
        "species": ("Species shares", [Panel("species share", species, kind="stack")]),
        "prices": ("Price per cell", [Panel("price", _by_name(summaries, "market/prices"))]),
        "accuracy": ("Holdout accuracy", [accuracy_panel(evaluations, holdout_size(config))]),
        "assimilation": ("Assimilation attempts and their gates", [attempts_panel(attempts)]),
    }


def figures_from_streams(
    streams: Mapping[str, list[Any]], config: Mapping[str, Any]
) -> dict[str, tuple[str, list[Panel]]]:
    """`figures` from a run's streams as the dashboard reads them ({name: records})."""
    return figures(
        streams.get("gen_summaries", []),
        streams.get("episodes", []),
        streams.get("evaluations", []),
        streams.get("assimilation", []),
        config,
    )
