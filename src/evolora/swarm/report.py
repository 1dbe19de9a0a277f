"""`evolora swarm report`: tables from a run folder, and PNG panels: best-so-far curve, diversity
and team count over time, the heatmap of where evaluations fell, and the team tree."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np

from evolora.errors import EvoloraError
from evolora.telemetry import RunDir
from evolora.telemetry.atomic import atomic_write_bytes
from evolora.telemetry.report import Panel, Section, Table, plot_panels


def load(path: Path) -> tuple[RunDir, dict, list[dict], list[dict]]:
    """(run folder, config, trials, team events) of a swarm run."""
    run = RunDir.open(path)
    trials = run.read_stream("trials")
    if not trials:
        raise EvoloraError(f"'{path}' has no trials.jsonl records; is it a swarm run folder?")
    return run, run.config(), trials, run.read_stream("teams")


def maximizing(events: list[dict]) -> bool:
    """Whether the run maximised (its first teams.jsonl record says)."""
    start = next((e for e in events if e["event"] == "start"), {})
    return start.get("direction") == "maximize"


def best_so_far(trials: list[dict], maximize: bool) -> tuple[list[int], list[float]]:
    """Trial numbers and the best value found up to each (complete trials only)."""
    xs, ys, best = [], [], None
    for record in trials:
        value = record["value"]
        if record["state"] == "complete" and (
            best is None or (value > best if maximize else value < best)
        ):
            best = value
        if best is not None:
            xs.append(record["trial"])
            ys.append(best)
    return xs, ys


def sections(
    config: dict, trials: list[dict], events: list[dict], images: dict[str, Path] | None = None
) -> list[Section]:
    """The report's tables (and images, when given)."""
    maximize = maximizing(events)
    complete = [t for t in trials if t["state"] == "complete"]
    pick = max if maximize else min
    best = pick(complete, key=lambda t: t["value"]) if complete else None
    summary = Table(
        "Run",
        ["what", "value"],
        [
            ["objective", config.get("objective")],
            ["trials", len(trials)],
            ["failed", len(trials) - len(complete)],
            ["best value", None if best is None else best["value"]],
            ["best trial", None if best is None else best["trial"]],
        ],
    )
    params = Table(
        "Best configuration",
        ["parameter", "value"],
        [[k, v] for k, v in (best or {"params": {}})["params"].items()],
    )
    kinds = Counter(e["event"] for e in events if e["event"] != "status")
    decisions = Table("Decisions (teams.jsonl)", ["event", "count"], sorted(kinds.items()))
    recent = [e for e in events if e["event"] != "status"][-10:]
    last = Table(
        "Last decisions",
        ["trial", "event", "team", "reason"],
        [[e["trial"], e["event"], e["team"], e["reason"]] for e in recent],
    )
    out = [Section("Summary", [summary, params]), Section("Swarm", [decisions, last])]
    if images:
        out.append(Section("Plots", images=list(images.values())))
    return out


def write_plots(
    config: dict, trials: list[dict], events: list[dict], folder: Path, maximize: bool
) -> dict[str, Path]:
    """Write the PNG panels into `folder`; return them by name."""
    status = [e for e in events if e["event"] == "status"]
    xs, ys = best_so_far(trials, maximize)
    curves = plot_panels(
        folder / "progress.png",
        "Swarm progress",
        [
            Panel("best so far", {"best": (xs, ys)}),
            Panel(
                "diversity",
                {
                    "mean pairwise distance": (
                        [e["trial"] for e in status],
                        [e["swarm/diversity"] for e in status],
                    )
                },
            ),
            Panel(
                "teams",
                {"teams": ([e["trial"] for e in status], [e["swarm/teams"] for e in status])},
            ),
        ],
        xlabel="trial",
    )
    return {
        "progress": curves,
        "heatmap": _heatmap(trials, folder / "heatmap.png", maximize),
        "teams": _team_tree(trials, events, folder / "team_tree.png"),
    }


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _heatmap(trials: list[dict], path: Path, maximize: bool) -> Path:
    """Evaluation counts on the first two unit-cube coordinates, and every trial by value."""
    points = np.array([t["u"] for t in trials])
    if points.shape[1] == 1:
        points = np.concatenate([points, np.zeros_like(points)], axis=1)
    figure = _figure(10, 4.4)
    left, right = figure.subplots(1, 2)
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=12, range=[[0, 1], [0, 1]])
    image = left.imshow(counts.T, origin="lower", extent=(0, 1, 0, 1), cmap="magma")
    figure.colorbar(image, ax=left, label="evaluations")
    left.set_title("heatmap (coordinates 1, 2)")
    done = [t for t in trials if t["state"] == "complete"]
    values = np.array([t["value"] for t in done], dtype=float)
    if len(done):
        shown = -values if maximize else values
        rank = np.argsort(np.argsort(shown)) / max(1, len(shown) - 1)
        xy = np.array([t["u"][:2] if len(t["u"]) > 1 else [t["u"][0], 0] for t in done])
        dots = right.scatter(xy[:, 0], xy[:, 1], c=rank, cmap="viridis_r", s=10)
        figure.colorbar(dots, ax=right, label="rank of value (0 = best)")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.set_title("trials by value")
    return _save(figure, path)


def _team_tree(trials: list[dict], events: list[dict], path: Path) -> Path:
    """One line per team from its first to its last trial; clones linked to their parents."""
    spans: dict[int, list[int]] = {}
    for record in trials:
        if record["team"] is not None:
            spans.setdefault(record["team"], [record["trial"], record["trial"]])[1] = record[
                "trial"
            ]
    parents = {e["team"]: e["parent"] for e in events if e["event"] == "clone"}
    figure = _figure(9, 0.35 * max(4, len(spans)) + 1.2)
    ax = figure.subplots()
    for team, (start, end) in sorted(spans.items()):
        ax.plot([start, end], [team, team], lw=4, color="C1" if team in parents else "C0")
        if team in parents:
            ax.plot([start, start], [parents[team], team], color="grey", lw=1, ls=":")
    markers = {"reallocate": "x", "reseed": "*", "retire": "s", "refine": "^"}
    for event in events:
        if event["event"] in markers:
            marker = markers[event["event"]]
            ax.plot(event["trial"], event["team"], marker, color="C3")
    ax.set_xlabel("trial")
    ax.set_ylabel("team")
    ax.set_title("team tree (orange: clones; x reallocated, * re-seeded, square retired)")
    return _save(figure, path)
