"""The economy's charts for `evolora dashboard` (live, as a run writes its streams).

`figures_from_streams` turns a run's streams into `{figure id: (title, [Panel, ...])}`: the
steered hyperparameters next to the loss curves, the token distribution over agents, agent
performance (cumulative credit), market prices, volatility and resource pressure, the trade
network (tokens moved between each pair of agents), the pheromone field of every agent, and
anxiety with the four modulators.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from evolora.economy.report import KNOBS, latest_by_step
from evolora.telemetry.report import Panel

Series = tuple[list[float], list[float]]


def _field(records: Sequence[dict], key: str, x: str = "step") -> Series:
    """(x, value) of `key` over the records that hold a number there."""
    kept = [r for r in records if isinstance(r.get(key), int | float)]
    return [r[x] for r in kept], [float(r[key]) for r in kept]


def _per_agent(market: Sequence[dict], key: str) -> dict[str, Series]:
    """One series per agent of a per-agent mapping in market.jsonl (tokens, prices, risk)."""
    out: dict[str, Series] = defaultdict(lambda: ([], []))
    for record in market:
        for agent, value in (record.get(key) or {}).items():
            out[agent][0].append(record["round"])
            out[agent][1].append(float(value))
    return dict(sorted(out.items()))


def _cumulative_credit(proposals: Sequence[dict]) -> dict[str, Series]:
    """Each agent's running sum of the credit its settled proposals earned, by step."""
    total: dict[str, float] = defaultdict(float)
    out: dict[str, Series] = defaultdict(lambda: ([], []))
    for proposal in sorted(proposals, key=lambda p: p["step"]):
        if proposal.get("credit") is None:
            continue
        total[proposal["agent"]] += proposal["credit"]
        out[proposal["agent"]][0].append(proposal["step"])
        out[proposal["agent"]][1].append(total[proposal["agent"]])
    return dict(sorted(out.items()))


def _trade_network(trades: Sequence[dict]) -> dict[str, Series]:
    """Tokens moved from lender to borrower, accumulated per pair, by round."""
    total: dict[str, float] = defaultdict(float)
    out: dict[str, Series] = defaultdict(lambda: ([], []))
    for trade in trades:
        pair = f"{trade['lender']} -> {trade['borrower']} ({trade.get('kind', 'loan')})"
        total[pair] += trade["amount"]
        out[pair][0].append(trade["round"])
        out[pair][1].append(total[pair])
    return dict(sorted(out.items()))


def _pheromones(market: Sequence[dict]) -> list[Panel]:
    """One panel per agent: the pheromone on each of its actions, by round."""
    agents = sorted({a for record in market for a in record.get("pheromones", {})})
    panels = []
    for agent in agents:
        series: dict[str, Series] = defaultdict(lambda: ([], []))
        for record in market:
            for action, tau in enumerate(record.get("pheromones", {}).get(agent, [])):
                series[f"action {action}"][0].append(record["round"])
                series[f"action {action}"][1].append(tau)
        panels.append(Panel(f"{agent} pheromone", dict(series)))
    return panels


def figures(
    steps: Sequence[dict],
    market: Sequence[dict],
    proposals: Sequence[dict],
    trades: Sequence[dict],
) -> dict[str, tuple[str, list[Panel]]]:
    """Every economy chart from the run's records."""
    neuro = {
        chem: ([m["round"] for m in market], [m["neuro"][chem] for m in market])
        for chem in ("myrcene", "limonene", "pinene", "linalool")
    }
    knob_panels = [Panel(knob, {knob: _field(steps, knob)}) for knob in KNOBS]
    return {
        "hyperparameters": (
            "Steered hyperparameters next to the loss (by micro-batch)",
            [
                Panel(
                    "loss",
                    {"train": _field(steps, "loss"), "validation": _field(steps, "val_loss")},
                ),
                *knob_panels,
            ],
        ),
        "tokens": (
            "Token distribution over agents (by round)",
            [Panel("tokens", _per_agent(market, "tokens"), kind="stack")],
        ),
        "performance": (
            "Agent performance: cumulative credit (by micro-batch)",
            [
                Panel("credit", _cumulative_credit(proposals)),
                Panel("risk appetite", _per_agent(market, "risk")),
            ],
        ),
        "market": (
            "Market prices, volatility and resource pressure (by round)",
            [
                Panel("price", _per_agent(market, "prices")),
                Panel(
                    "level / volatility",
                    {
                        "price level": _field(market, "price_level", "round"),
                        "volatility": _field(market, "volatility", "round"),
                    },
                ),
                Panel("demand / budget", {"pressure": _field(market, "pressure", "round")}),
            ],
        ),
        "trades": (
            "Trade network: tokens moved lender -> borrower (by round)",
            [Panel("tokens moved", _trade_network(trades), kind="markers")],
        ),
        "pheromones": ("Pheromone field per agent (by round)", _pheromones(market)),
        "anxiety": (
            "Anxiety, modulators and the hypergradient signal (by round)",
            [
                Panel("anxiety", {"anxiety": _field(market, "anxiety", "round")}),
                Panel("modulator level", neuro),
                Panel(
                    "exploration / signal",
                    {
                        "exploration": _field(market, "exploration", "round"),
                        "hypergradient": _field(market, "hypergradient", "round"),
                    },
                ),
            ],
        ),
    }


def figures_from_streams(
    streams: Mapping[str, list[Any]], config: Mapping[str, Any]
) -> dict[str, tuple[str, list[Panel]]]:
    """`figures` from a run's streams as the dashboard reads them ({name: records})."""
    return figures(
        latest_by_step(streams.get("steps", [])),
        latest_by_step(streams.get("market", []), "round"),
        streams.get("proposals", []),
        streams.get("trades", []),
    )
