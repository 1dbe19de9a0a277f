"""Each system registers the panels the dashboard draws for its runs.

A panel builder takes a run's streams (`{stream name: records}`, each generation once) and its
config, and returns `{figure id: (title, [Panel, ...])}`. A run is matched to its system by the
`name` in its meta.json (the name it was created with, e.g. "ecology"). A figure may carry a
third element, its x-axis label (default "generation"). Runs of a system with no
builder get the generic view: the numbers of each stream, one chart per stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from evolora.telemetry.dashboard.figures import field_series, numeric_fields, plotly_figure, x_key
from evolora.telemetry.report import Panel

Figures = dict[str, tuple[str, list[Panel]] | tuple[str, list[Panel], str]]
Builder = Callable[[Mapping[str, list[Any]], Mapping[str, Any]], Figures]

# Systems shipped with evolora, imported only when one of their runs is shown.
BUILTIN = {
    "ecology": "evolora.ecology.panels:figures_from_streams",
    "economy": "evolora.economy.panels:figures_from_streams",
    "swarm": "evolora.swarm.panels:figures_from_streams",
    "braid": "evolora.braid.panels:figures_from_streams",
}
_registered: dict[str, Builder] = {}
GENERIC_FIELDS = 6  # numbers drawn per stream in the generic view


def register_panels(system: str, builder: Builder) -> None:
    """Draw `builder`'s figures for every run whose meta.json names `system`."""
    _registered[system] = builder


def builder_for(system: str | None) -> Builder | None:
    """The registered (or shipped) panel builder of `system`, if any."""
    if system in _registered:
        return _registered[system]
    if system in BUILTIN:
        module, function = BUILTIN[system].split(":")
        builder = getattr(import_module(module), function)
        _registered[system] = builder
        return builder
    return None


def run_figures(
    system: str | None, streams: Mapping[str, list[Any]], config: Mapping[str, Any]
) -> list[dict]:
    """The Plotly figures of one run: its system's panels, else the generic view."""
    builder = builder_for(system)
    figures = builder(streams, config) if builder is not None else generic_figures(streams)
    return [plotly_figure(name, *figure) for name, figure in figures.items()]


def generic_figures(streams: Mapping[str, list[Any]]) -> Figures:
    """One figure per stream: its first numeric fields, one panel each."""
    figures: Figures = {}
    for name, records in streams.items():
        fields = numeric_fields(records)[:GENERIC_FIELDS]
        if fields:
            panels = [Panel(key, {key: field_series(records, key)}) for key in fields]
            figures[name] = (f"{name} ({x_key(records)})", panels)
    return figures
