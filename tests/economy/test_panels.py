"""`evolora dashboard` draws the economy's own panels for an economy run folder."""

from __future__ import annotations

from economy_helpers import tiny_config

from evolora.economy.loop import Job
from evolora.economy.panels import figures
from evolora.telemetry import RunDir
from evolora.telemetry.dashboard.registry import run_figures
from evolora.telemetry.dashboard.runs import read_streams

FIGURES = {"hyperparameters", "tokens", "performance", "market", "trades", "pheromones", "anxiety"}


def test_the_dashboard_draws_every_economy_panel_from_a_run_folder(host, tmp_path):
    config = tiny_config()
    run = RunDir.create(tmp_path, config, name="economy")
    job = Job(config, run, host=host)
    job.train()
    job.finish(accuracy=False)
    run.close()
    drawn = {f["id"]: f for f in run_figures("economy", read_streams(run.path), {})}
    assert set(drawn) == FIGURES
    traded = bool(run.read_stream("trades"))
    for figure in drawn.values():
        if figure["id"] != "trades" or traded:
            assert any(trace["x"] for trace in figure["data"]), figure["id"]
    names = {trace["name"] for trace in drawn["hyperparameters"]["data"]}
    assert {"train", "validation", "lr", "rank"} <= names
    agents = {trace["name"] for trace in drawn["tokens"]["data"]}
    assert agents == set(job.steering.economy.agents)


def test_the_trade_network_accumulates_tokens_per_pair():
    trades = [
        {"round": 1, "lender": "lr", "borrower": "rank", "amount": 2.0, "kind": "loan"},
        {"round": 2, "lender": "lr", "borrower": "rank", "amount": 0.5, "kind": "loan"},
        {"round": 2, "lender": "lr", "borrower": "rank", "amount": 1.0, "kind": "repay"},
    ]
    (panel,) = figures([], [], [], trades)["trades"][1]
    assert panel.series["lr -> rank (loan)"] == ([1, 2], [2.0, 2.5])
    assert panel.series["lr -> rank (repay)"] == ([2], [1.0])
