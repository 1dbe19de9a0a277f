"""The braid's charts, for `evolora braid report --plots/--html` and `evolora dashboard` (live).

`figures_from_streams` turns a run's streams into `{figure id: (title, [Panel, ...], x label)}`:
the braider's reward, score and per-head decision entropy over training, the compute it spends,
each family's score and the share of its episodes where a member joins the lead, and the fusion
banks' training losses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from evolora.braid.braider import HEADS
from evolora.telemetry.report import Panel

Series = tuple[list[float], list[float]]


def training_panels(updates: Sequence[dict]) -> list[Panel]:
    """Reward and score, per-head decision entropy and compute share, by update."""
    x = [u["update"] for u in updates]
    return [
        Panel("reward", {key: (x, [u[key] for u in updates])
                         for key in ("reward/mean", "score/mean")}),
        Panel("entropy", {head: (x, [u[f"entropy/{head}"] for u in updates]) for head in HEADS}),
        Panel("compute", {"compute share": (x, [u["budget/compute"] for u in updates])}),
    ]


def family_panels(decisions: Sequence[dict]) -> list[Panel]:
    """Each family's mean episode score, and the share of its episodes where a member joins the
    lead, by update."""
    rows: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for record in decisions:
        rows[record["family"]][record["update"]].append(record)
    score: dict[str, Series] = {}
    joins: dict[str, Series] = {}
    for family, by_update in sorted(rows.items()):
        updates = sorted(by_update)
        score[family] = (updates, [_mean([r["score"] for r in by_update[u]]) for u in updates])
        joins[family] = (updates, [_mean([float(len(r["decision"]["models"]) > 1)
                                          for r in by_update[u]]) for u in updates])
    return [Panel("score", score), Panel("join share", joins)]


def fusion_panels(fusion: Sequence[dict]) -> list[Panel]:
    """Each fusion bank's training loss, by step."""
    losses: dict[str, Series] = defaultdict(lambda: ([], []))
    for record in fusion:
        losses[record["strategy"]][0].append(record["step"])
        losses[record["strategy"]][1].append(float(record["loss"]))
    return [Panel("loss", dict(sorted(losses.items())))]


def figures_from_streams(
    streams: Mapping[str, list[Any]], config: Mapping[str, Any]
) -> dict[str, tuple[str, list[Panel], str]]:
    """Every braid chart the run's streams hold so far (the dashboard's builder)."""
    figures: dict[str, tuple[str, list[Panel], str]] = {}
    if streams.get("fusion"):
        figures["fusion"] = ("Fusion banks: training loss (by step)",
                             fusion_panels(streams["fusion"]), "step")
    if streams.get("updates"):
        figures["training"] = ("Braider training: reward, per-head entropy, compute (by update)",
                               training_panels(streams["updates"]), "update")
    if streams.get("decisions"):
        figures["families"] = ("Per family: score and join share (by update)",
                               family_panels(streams["decisions"]), "update")
    return figures


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
