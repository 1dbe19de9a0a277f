"""Report building blocks shared by every strategy: tables, PNG panels and a self-contained page.

A report is a list of `Section`s, each holding `Table`s and PNG images. The same sections print
as rich tables on the terminal (`print_sections`) and become one HTML file (`html_page`) whose
images are embedded as base64 data URIs: the page needs no other file and no network.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table as RichTable
from rich.text import Text

from evolora.telemetry.atomic import atomic_write_bytes, atomic_write_text

MISSING = "—"


@dataclass
class Table:
    """A titled table: column names and rows of plain values (numbers, strings, None)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Section:
    """A titled part of a report: tables, then PNG images (embedded in HTML only)."""

    title: str
    tables: list[Table] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


@dataclass
class Panel:
    """One subplot: named series of (x values, y values) drawn as lines, stacked areas or
    markers; `errors` gives a series symmetric error bars, `labels` a hover text per point."""

    ylabel: str
    series: dict[str, tuple[Sequence[float], Sequence[float]]]
    kind: Literal["line", "stack", "markers"] = "line"
    errors: dict[str, Sequence[float]] = field(default_factory=dict)
    labels: dict[str, Sequence[str]] = field(default_factory=dict)


def format_value(value: Any) -> str:
    """A table cell as text: floats to 4 significant digits, None as a dash, the rest as str."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


# -- terminal ------------------------------------------------------------------------------------


def rich_table(table: Table) -> RichTable:
    """The table's rows as a rich Table (numbers right-aligned; title and note are not included,
    so that a narrow table does not wrap them)."""
    numeric = [
        all(isinstance(row[i], (int, float)) or row[i] is None for row in table.rows)
        for i in range(len(table.columns))
    ]
    shown = RichTable(box=box.SIMPLE_HEAVY, show_edge=False)
    for name, is_number in zip(table.columns, numeric, strict=True):
        shown.add_column(name, justify="right" if is_number else "left")
    for row in table.rows:
        shown.add_row(*(Text(format_value(v)) for v in row))
    return shown


def print_sections(console: Console, sections: Sequence[Section]) -> None:
    """Print every section's tables to the console, each under its title (images are skipped)."""
    for section in sections:
        console.rule(section.title)
        for table in section.tables:
            console.print(f"[bold]{markup_escape(table.title)}[/bold]", highlight=False)
            if table.rows:
                console.print(rich_table(table))
            else:
                console.print("[dim]nothing recorded yet[/dim]")
            if table.note:
                console.print(f"[dim]{markup_escape(table.note)}[/dim]", highlight=False)


# -- HTML ----------------------------------------------------------------------------------------


def html_table(table: Table) -> str:
    """The table as an escaped HTML <table> with a caption."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row) + "</tr>"
        for row in table.rows
    )
    if not table.rows:
        body = f'<tr><td colspan="{len(table.columns)}">nothing recorded yet</td></tr>'
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (
        f"<table><caption>{html.escape(table.title)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
    )


def embed_png(png: bytes | Path, alt: str = "") -> str:
    """An <img> tag whose source is the PNG itself, as a base64 data URI."""
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.note { color: #666; font-size: 0.85em; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def html_page(
    title: str,
    sections: Sequence[Section],
    subtitle: str = "",
    figures: Sequence[dict] = (),
) -> str:
    """One self-contained HTML page: inline style, tables, images embedded as data URIs, and
    interactive Plotly `figures` (from `evolora.telemetry.dashboard.figures`, the dashboard's
    own figure code) with plotly.js inlined, so the page needs no other file and no network."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f"<p>{html.escape(subtitle)}</p>")
    if figures:
        from evolora.telemetry.dashboard.figures import figures_html

        parts.append(f"<section><h2>Charts</h2>{figures_html(figures)}</section>")
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        parts.extend(html_table(table) for table in section.tables)
        parts.extend(embed_png(image, alt=image.stem) for image in section.images)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(
    path: Path,
    title: str,
    sections: Sequence[Section],
    subtitle: str = "",
    figures: Sequence[dict] = (),
) -> Path:
    """Write `html_page(...)` to `path` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, html_page(title, sections, subtitle, figures))
    return path


# -- PNG -----------------------------------------------------------------------------------------


def plot_panels(
    path: Path, title: str, panels: Sequence[Panel], xlabel: str = "generation"
) -> Path:
    """Draw panels stacked vertically on a shared x axis and write them as a PNG at `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    height = 2.6 * len(panels) + 0.9
    figure = Figure(figsize=(9, height), dpi=100)
    FigureCanvasAgg(figure)  # the Agg canvas: no display, no global pyplot state
    # Fixed margins (a layout engine doubles the drawing time): legends go right of the axes.
    figure.subplots_adjust(
        left=0.09, right=0.8, top=1 - 0.45 / height, bottom=0.5 / height, hspace=0.12
    )
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        _draw(ax, panel)
    axes[-1].set_xlabel(xlabel)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title)
    buffer = io.BytesIO()
    # No Software tag: the PNG carries nothing but the picture.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _draw(ax, panel: Panel) -> None:
    series = {name: xy for name, xy in panel.series.items() if len(xy[0])}
    if panel.kind == "stack" and series:
        xs = sorted({x for x_values, _ in series.values() for x in x_values})
        ys = [
            [dict(zip(x_values, y_values, strict=True)).get(x, 0.0) for x in xs]
            for x_values, y_values in series.values()
        ]
        ax.stackplot(xs, ys, labels=list(series), alpha=0.85)
    else:
        for name, (x_values, y_values) in series.items():
            if panel.kind == "markers":
                ax.scatter(x_values, y_values, label=name)
            elif name in panel.errors:
                ax.errorbar(x_values, y_values, yerr=panel.errors[name], capsize=3, label=name)
            else:
                ax.plot(x_values, y_values, marker="o" if len(x_values) < 30 else None, label=name)
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    elif 1 < len(series) <= 12:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
