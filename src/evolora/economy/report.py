"""`evolora economy report`: a terminal summary, PNG panels and one self-contained HTML page.

Panels: steered hyperparameters next to the loss curves, token distribution over time, agent
performance (cumulative credit), market prices and volatility, resource pressure, the trade
network, pheromone heatmaps, anxiety and the modulators.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from pathlib import Path

from rich.table import Table

from evolora.telemetry import RunDir

KNOBS = ("lr", "weight_decay", "dropout", "grad_clip", "accumulation", "rank")


def latest_by_step(records: list[dict], key: str = "step") -> list[dict]:
    """One record per step (a resumed run re-writes the steps after its checkpoint: keep last)."""
    by_key = {}
    for record in records:
        by_key[record[key]] = record
    return [by_key[k] for k in sorted(by_key)]


def load(run: RunDir) -> dict[str, list[dict]]:
    """The run's streams, de-duplicated after resumes."""
    return {
        "steps": latest_by_step(run.read_stream("steps")),
        "market": latest_by_step(run.read_stream("market"), "round"),
        "proposals": run.read_stream("proposals"),
        "trades": run.read_stream("trades"),
        "bursts": run.read_stream("bursts"),
        "summary": run.read_stream("summary"),
    }


def agent_table(data: dict[str, list[dict]]) -> Table:
    """Per agent: actions applied, clipped, mean and total credit, final tokens and risk."""
    table = Table(title="agents")
    for column in ("agent", "actions", "clipped", "mean credit", "total credit", "tokens", "risk"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    credits: dict[str, list[float]] = defaultdict(list)
    actions: dict[str, int] = defaultdict(int)
    clipped: dict[str, int] = defaultdict(int)
    for proposal in data["proposals"]:
        actions[proposal["agent"]] += 1
        clipped[proposal["agent"]] += int(proposal["clipped"])
        if proposal.get("credit") is not None:
            credits[proposal["agent"]].append(proposal["credit"])
    last = data["market"][-1] if data["market"] else {"tokens": {}, "risk": {}}
    for name in sorted(actions):
        values = credits.get(name, [])
        mean = sum(values) / len(values) if values else 0.0
        table.add_row(
            name,
            str(actions[name]),
            str(clipped[name]),
            f"{mean:+.4f}",
            f"{sum(values):+.4f}",
            f"{last['tokens'].get(name, 0.0):.1f}" if name in last["tokens"] else "-",
            f"{last['risk'][name]:.2f}" if name in last["risk"] else "-",
        )
    return table


def plot_panels(data: dict[str, list[dict]], folder: Path) -> list[Path]:
    """Write every panel as a PNG into `folder`; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    steps, market = data["steps"], data["market"]
    paths = []

    def save(fig, name):
        path = folder / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)

    fig, axes = plt.subplots(len(KNOBS) + 1, 1, figsize=(8, 2 * (len(KNOBS) + 1)), sharex=True)
    xs = [r["step"] for r in steps]
    axes[0].plot(xs, [r["loss"] for r in steps], lw=0.6, label="train loss")
    evals = [r for r in steps if "val_loss" in r]
    axes[0].plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="val")
    axes[0].legend()
    for ax, knob in zip(axes[1:], KNOBS, strict=True):
        ax.step(xs, [r[knob] for r in steps], where="post")
        ax.set_ylabel(knob)
    axes[1].set_yscale("log")
    save(fig, "hyperparameters")
    if market:
        rounds = [m["round"] for m in market]
        names = sorted(market[-1]["tokens"])
        panels = [
            ("tokens", "tokens per agent", lambda m, n: m["tokens"].get(n, np.nan)),
            ("prices", "price per action", lambda m, n: m["prices"].get(n, np.nan)),
            ("risk", "risk appetite", lambda m, n: m["risk"].get(n, np.nan)),
        ]
        for name, title, get in panels:
            fig, ax = plt.subplots(figsize=(8, 3))
            for agent in names:
                ax.plot(rounds, [get(m, agent) for m in market], label=agent)
            ax.set_title(title)
            ax.legend(fontsize=7)
            save(fig, name)
        cumulative: dict[str, float] = defaultdict(float)
        fig, ax = plt.subplots(figsize=(8, 3))
        series = defaultdict(list)
        for proposal in sorted(data["proposals"], key=lambda p: p["step"]):
            if proposal.get("credit") is not None:
                cumulative[proposal["agent"]] += proposal["credit"]
                series[proposal["agent"]].append((proposal["step"], cumulative[proposal["agent"]]))
        for agent, points in sorted(series.items()):
            ax.plot(*zip(*points, strict=True), label=agent)
        ax.set_title("agent performance: cumulative credit")
        ax.legend(fontsize=7)
        save(fig, "performance")
        fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
        axes[0].plot(rounds, [m["volatility"] for m in market])
        axes[0].set_ylabel("volatility")
        axes[1].plot(rounds, [m["pressure"] for m in market])
        axes[1].set_ylabel("demand / budget")
        axes[2].plot(rounds, [m["anxiety"] for m in market], label="anxiety")
        for chem in ("myrcene", "limonene", "pinene", "linalool"):
            axes[2].plot(rounds, [m["neuro"][chem] for m in market], label=chem, lw=0.8)
        axes[2].legend(fontsize=7)
        save(fig, "market_anxiety")
        fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.4 * len(names)), squeeze=False)
        for ax, agent in zip(axes[:, 0], names, strict=True):
            grid = np.array([m["pheromones"][agent] for m in market if agent in m["pheromones"]])
            ax.imshow(grid.T, aspect="auto", cmap="viridis")
            ax.set_ylabel(agent, fontsize=7)
        axes[0, 0].set_title("pheromone per action over rounds")
        save(fig, "pheromones")
    if data["trades"]:
        agents = sorted({t[k] for t in data["trades"] for k in ("lender", "borrower")})
        index = {a: i for i, a in enumerate(agents)}
        flows = np.zeros((len(agents), len(agents)))
        for trade in data["trades"]:
            flows[index[trade["lender"]], index[trade["borrower"]]] += trade["amount"]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.imshow(flows, cmap="Blues")
        ax.set_xticks(range(len(agents)), agents, rotation=45, fontsize=7)
        ax.set_yticks(range(len(agents)), agents, fontsize=7)
        ax.set_title("trade network: tokens lender (row) -> borrower (column)")
        save(fig, "trades")
    return paths


def write_html(run: RunDir, data: dict[str, list[dict]], pngs: list[Path]) -> Path:
    """One self-contained page: the final metrics and every panel inlined."""
    final = data["summary"][-1] if data["summary"] else {}
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in final.items()
    )
    images = "".join(
        f'<h3>{p.stem}</h3><img src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">'
        for p in pngs
    )
    page = (
        f"<html><head><meta charset='utf-8'><title>{html.escape(run.path.name)}</title>"
        f"</head><body><h1>economy run {html.escape(run.path.name)}</h1>"
        f"<table>{rows}</table>{images}</body></html>"
    )
    out = run.path / "report" / "report.html"
    out.parent.mkdir(exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
