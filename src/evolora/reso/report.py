"""`evolora reso report RUN`: a training run's losses and extension readings as tables and plots."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from evolora.errors import EvoloraError
from evolora.telemetry import RunDir
from evolora.telemetry.report import Panel, Section, Table, plot_panels, print_sections, write_html

READINGS = ("kuramoto/order", "prsc/coherence", "agency/salience", "gating/skipped",
            "stability/lyapunov")


def report_run(path: Path, console: Console, plots: bool, html: bool) -> list[Section]:
    """Print the run's summary; with `plots`/`html`, write PNGs / one HTML page into RUN/report."""
    run = RunDir.open(path)
    metrics = run.read_stream("metrics") if "metrics" in run.stream_names() else []
    evals = run.read_stream("evaluations") if "evaluations" in run.stream_names() else []
    if not metrics:
        raise EvoloraError(f"{path} has no training metrics yet (metrics.jsonl is empty).")
    last = metrics[-1]
    rows = [["steps", last["step"]], ["train loss (last)", last["loss"]],
            ["held-out loss (last)", evals[-1]["val_loss"] if evals else None],
            ["tokens/s (mean)", round(sum(m["tokens_per_s"] for m in metrics) / len(metrics), 1)]]
    rows += [[key, last[key]] for key in READINGS if key in last]
    sections = [Section("Training", [Table("summary", ["figure", "value"], rows)])]
    if evals:
        sections.append(Section("Held-out loss", [Table(
            "held-out Shakespeare", ["step", "val_loss"],
            [[e["step"], e["val_loss"]] for e in evals])]))
    print_sections(console, sections)
    folder = run.path / "report"
    if plots or html:
        steps = [m["step"] for m in metrics]
        panels = [Panel("loss", {"train": (steps, [m["loss"] for m in metrics]),
                                 "held-out": ([e["step"] for e in evals],
                                              [e["val_loss"] for e in evals])})]
        panels += [Panel(key, {key: ([m["step"] for m in metrics if key in m],
                                     [m[key] for m in metrics if key in m])})
                   for key in READINGS if key in last]
        image = plot_panels(folder / "training.png", "reso training", panels, xlabel="step")
        sections[0].images.append(image)
        console.print(f"plots written to {folder}")
    if html:
        page = write_html(folder / "report.html", "reso run", sections, str(run.path))
        console.print(f"report written to {page}")
    return sections
