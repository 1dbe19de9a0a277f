"""`evolora braid report RUN`: reward, score, compute and per-head entropy over training, each
family's score and join share, the decisions per family, as terminal lines, PNGs and one HTML page
in RUN/report/."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from evolora.braid.braider import HEADS
from evolora.braid.panels import family_panels, training_panels
from evolora.errors import EvoloraError
from evolora.telemetry import RunDir
from evolora.telemetry.report import Section, Table, plot_panels, write_html


def _window(values: list[float], k: int) -> tuple[float, float]:
    k = max(1, min(k, len(values) // 2 or 1))
    return float(np.mean(values[:k])), float(np.mean(values[-k:]))


def summary(run: RunDir) -> tuple[Table, Table]:
    """Per-metric first/last-window means, and the most common decision per family (last third)."""
    updates = run.read_stream("updates")
    if not updates:
        raise EvoloraError(f"Run '{run.path}' has no braider updates yet.")
    keys = ["reward/mean", "score/mean", "budget/compute"] + [f"entropy/{h}" for h in HEADS]
    rows = []
    for key in keys:
        first, last = _window([u[key] for u in updates], 8)
        rows.append([key, round(first, 4), round(last, 4), round(last - first, 4)])
    metrics = Table("training (first vs last 8 updates)", ["metric", "first", "last", "change"],
                    rows)
    decisions = run.read_stream("decisions")
    late = [d for d in decisions if d["update"] >= 2 * updates[-1]["update"] // 3]
    per_family = []
    for family in sorted({d["family"] for d in late}):
        mine = [d for d in late if d["family"] == family]
        common, count = Counter(
            f"{'+'.join(d['decision']['models'])} {d['decision']['strategy']} "
            f"L{d['decision']['layers']}" for d in mine).most_common(1)[0]
        per_family.append([family, common, round(count / len(mine), 2),
                           round(float(np.mean([d["score"] for d in mine])), 3)])
    table = Table("decisions in the last third of training",
                  ["family", "most common decision", "share", "score"], per_family)
    return metrics, table


def report(folder: str | Path, plots: bool = False, html: bool = False) -> list[str]:
    """Print-ready lines; with `plots`/`html` also write RUN/report/{training.png,report.html}."""
    run = RunDir.open(folder)
    metrics, decisions = summary(run)
    lines = [f"[bold]{metrics.title}[/bold]"]
    lines += [" ".join(f"{c!s:>18}" for c in row) for row in [metrics.columns, *metrics.rows]]
    lines += [f"[bold]{decisions.title}[/bold]"]
    lines += ["  ".join(str(c) for c in row) for row in decisions.rows]
    images = []
    if plots or html:
        panels = training_panels(run.read_stream("updates"))
        panels += family_panels(run.read_stream("decisions"))
        images.append(plot_panels(run.path / "report" / "training.png", "braider training",
                                  panels, xlabel="update"))
        lines.append(f"Wrote {images[0]}")
    if html:
        page = write_html(run.path / "report" / "report.html", f"braid run {run.path.name}",
                          [Section("braider", [metrics, decisions], images)])
        lines.append(f"Wrote {page}")
    return lines
