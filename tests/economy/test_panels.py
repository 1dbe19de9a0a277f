"""`evolora dashboard` draws the economy's own panels for an economy run folder."""

from __future__ import annotations

from conftest import tiny_config

from evolora.economy.loop import Job
from evolora.telemetry import RunDir
from evolora.telemetry.dashboard.registry import run_figures
from evolora.telemetry.dashboard.runs import read_streams

FIGURES = {"hyperparameters", "tokens", "performance", "market", "trades", "pheromones", "anxiety"}


def test_the_dashboard_draws_every_economy_panel_from_a_run_folder(host, tmp_path):
    # few tokens and a high price make agents needy, so trades happen
    config = tiny_config(market={"initial_tokens": 3.0, "base_price": 1.5, "budget": 2})
    run = RunDir.create(tmp_path, config, name="economy")
    job = Job(config, run, host=host)
    job.train()
    job.finish(accuracy=False)
    run.close()
    figures = {f["id"]: f for f in run_figures("economy", read_streams(run.path), {})}
    assert set(figures) == FIGURES
    for figure in figures.values():
        assert figure["data"], figure["id"]
        assert any(trace["x"] for trace in figure["data"]), figure["id"]
    names = {trace["name"] for trace in figures["hyperparameters"]["data"]}
    assert {"train", "validation", "lr", "rank"} <= names
    agents = {trace["name"] for trace in figures["tokens"]["data"]}
    assert agents == set(job.steering.economy.agents)
    assert len(run.read_stream("trades")) > 0
