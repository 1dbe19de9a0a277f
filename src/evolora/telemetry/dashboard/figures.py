"""Plotly figures from report `Panel`s: the one figure code behind the dashboard and `--html`.

A figure is plain JSON (`{"id", "title", "data", "layout"}`) that Plotly.js draws: the dashboard
sends it to the browser, `evolora report --html` embeds it with plotly.js inlined.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from functools import cache

from evolora.telemetry.report import Panel

GAP = 0.06  # vertical space between stacked subplots, as a share of the figure's height


def plotly_figure(
    name: str, title: str, panels: Sequence[Panel], xlabel: str = "generation"
) -> dict:
    """One figure: `panels` stacked top to bottom on a shared x axis, as Plotly JSON."""
    count = max(1, len(panels))
    height = (1 - GAP * (count - 1)) / count
    data: list[dict] = []
    layout: dict = {
        "title": {"text": title},
        "height": 140 + 220 * count,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "xaxis": {"title": {"text": xlabel}, "anchor": f"y{count if count > 1 else ''}"},
        "legend": {"orientation": "h"},
        "hovermode": "closest",
    }
    for index, panel in enumerate(panels):
        axis = "y" if index == 0 else f"y{index + 1}"
        top = 1 - index * (height + GAP)
        layout["yaxis" if index == 0 else f"yaxis{index + 1}"] = {
            "title": {"text": panel.ylabel},
            "domain": [max(0.0, top - height), top],
        }
        data.extend(_traces(panel, axis, group=f"stack{index}"))
    return {"id": name, "title": title, "data": data, "layout": layout}


def _traces(panel: Panel, axis: str, group: str) -> list[dict]:
    traces = []
    for name, (xs, ys) in panel.series.items():
        trace = {
            "type": "scatter",
            "name": name,
            "x": list(xs),
            "y": [_finite(y) for y in ys],
            "yaxis": axis,
            "mode": "markers" if panel.kind == "markers" else "lines+markers",
        }
        if panel.kind == "stack":
            trace.update({"stackgroup": group, "mode": "lines"})
        if name in panel.errors:
            errors = [_finite(e) for e in panel.errors[name]]
            trace["error_y"] = {"type": "data", "array": errors, "visible": True}
        if name in panel.labels:
            trace["text"] = list(panel.labels[name])
        traces.append(trace)
    return traces


def _finite(value) -> float | None:
    """JSON has no NaN or infinity: those points become gaps."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def field_figure(
    name: str, title: str, runs: Mapping[str, Sequence[dict]], key: str, ylabel: str = ""
) -> dict:
    """Field `key` of each run's records on one axis (one line per run), against the records'
    generation (or step, or position when they have neither)."""
    series = {label: field_series(records, key) for label, records in runs.items()}
    xlabel = x_key(next(iter(runs.values()), []))
    return plotly_figure(name, title, [Panel(ylabel or key, series)], xlabel=xlabel)


def x_key(records: Sequence[dict]) -> str:
    """The field records are ordered by: 'generation', 'step', else 'record'."""
    for key in ("generation", "step"):
        if any(isinstance(r, dict) and key in r for r in records):
            return key
    return "record"


def field_series(records: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    """(x, y) of the records holding a number under `key` (x as in `x_key`)."""
    axis = x_key(records)
    xs, ys = [], []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            xs.append(record.get(axis, position) if axis != "record" else position)
            ys.append(value)
    return xs, ys


def numeric_fields(records: Sequence[dict], limit: int = 200) -> list[str]:
    """Names of the fields holding numbers in any record (bookkeeping fields excluded)."""
    seen: dict[str, None] = {}
    for record in records:
        if not isinstance(record, dict):
            continue
        for key, value in record.items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and key not in ("generation", "step", "attempt"):
                seen.setdefault(key, None)
        if len(seen) >= limit:
            break
    return list(seen)


@cache
def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly package (no network needed)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def figures_html(figures: Sequence[dict]) -> str:
    """Figures as HTML: plotly.js inlined once, then one drawn <div> per figure."""
    parts = [f"<script>{plotly_js()}</script>"]
    for figure in figures:
        div = f"figure-{html.escape(figure['id'])}"
        payload = json.dumps({"data": figure["data"], "layout": figure["layout"]})
        payload = payload.replace("</", "<\\/")  # a record's text must not close the script
        parts.append(
            f'<div id="{div}"></div><script>(function(){{const f={payload};'
            f'Plotly.newPlot("{div}",f.data,f.layout,{{responsive:true}});}})();</script>'
        )
    return "\n".join(parts)
