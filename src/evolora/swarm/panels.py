"""The swarm's charts in `evolora dashboard` (drawn live from trials.jsonl and teams.jsonl):
best so far, diversity / coverage / teams over time, where evaluations fell and how they
scored (the heatmap's two first coordinates), and the team tree over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evolora.swarm.report import best_so_far, maximizing
from evolora.telemetry.report import Panel

# Trials by rank of their value: the best tenth, the next four tenths, the rest.
BANDS = ((0.1, "best 10 %"), (0.5, "10-50 %"), (1.01, "worst 50 %"))
MARKED = ("clone", "reallocate", "reseed", "retire", "refine")


def _status(events: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    rows = [e for e in events if e.get("event") == "status" and key in e]
    return [e["trial"] for e in rows], [e[key] for e in rows]


def where_panel(trials: Sequence[dict], maximize: bool) -> Panel:
    """Every trial at its first two unit-cube coordinates, grouped by rank of its value."""
    done = sorted(
        (t for t in trials if t["state"] == "complete"),
        key=lambda t: -t["value"] if maximize else t["value"],
    )
    series: dict[str, tuple[list[float], list[float]]] = {}
    labels: dict[str, list[str]] = {}
    for position, record in enumerate(done):
        share = (position + 1) / len(done)
        band = next(name for limit, name in BANDS if share <= limit)
        _add(series, labels, band, record, f"trial {record['trial']}: {record['value']:.4g}")
    for record in trials:
        if record["state"] == "failed":
            _add(series, labels, "failed", record, f"trial {record['trial']}: {record['error']}")
    return Panel("coordinate 2", series, kind="markers", labels=labels)


def _add(series: dict, labels: dict, name: str, record: dict, label: str) -> None:
    u = record["u"]
    xs, ys = series.setdefault(name, ([], []))
    xs.append(u[0])
    ys.append(u[1] if len(u) > 1 else 0.0)
    labels.setdefault(name, []).append(label)


def team_tree_panel(trials: Sequence[dict], events: Sequence[dict]) -> Panel:
    """One row per team holding its trials over time, and the supervisor's decisions on it."""
    parents = {e["team"]: e.get("parent") for e in events if e.get("event") == "clone"}
    series: dict[str, tuple[list[int], list[int]]] = {}
    labels: dict[str, list[str]] = {}
    for record in trials:
        if record["team"] is None:
            continue
        name = f"team {record['team']}"
        xs, ys = series.setdefault(name, ([], []))
        xs.append(record["trial"])
        ys.append(record["team"])
        parent = parents.get(record["team"])
        origin = f" (clone of team {parent})" if parent is not None else ""
        labels.setdefault(name, []).append(f"{name}{origin}, agent {record['agent']}")
    for event in events:
        if event.get("event") in MARKED and event.get("team") is not None:
            xs, ys = series.setdefault(event["event"], ([], []))
            xs.append(event["trial"])
            ys.append(event["team"])
            labels.setdefault(event["event"], []).append(event["reason"])
    return Panel("team", series, kind="markers", labels=labels)


def figures_from_streams(
    streams: Mapping[str, list[Any]], config: Mapping[str, Any]
) -> dict[str, tuple[str, list[Panel], str]]:
    """{figure id: (title, panels, x label)} of a swarm run, from its streams."""
    trials, events = streams.get("trials", []), streams.get("teams", [])
    maximize = maximizing(events)
    values = [t for t in trials if t["state"] == "complete"]
    return {
        "progress": (
            "Best value so far",
            [
                Panel("best so far", {"best": best_so_far(trials, maximize)}),
                Panel(
                    "trial value",
                    {"trials": ([t["trial"] for t in values], [t["value"] for t in values])},
                    kind="markers",
                ),
            ],
            "trial",
        ),
        "diversity": (
            "Diversity, coverage and teams",
            [
                Panel(
                    "mean pairwise distance",
                    {"diversity": _status(events, "swarm/diversity")},
                ),
                Panel(
                    "heatmap cells visited (share)", {"coverage": _status(events, "swarm/coverage")}
                ),
                Panel("teams", {"teams": _status(events, "swarm/teams")}),
            ],
            "trial",
        ),
        "heatmap": (
            "Where evaluations fell and how they scored",
            [where_panel(trials, maximize)],
            "coordinate 1 (unit cube)",
        ),
        "teams": ("Team tree over time", [team_tree_panel(trials, events)], "trial"),
    }
