"""The swarm's panels in `evolora dashboard`, served from a real run folder."""

from __future__ import annotations

from starlette.testclient import TestClient

from evolora.swarm.config import RunConfig, SwarmConfig
from evolora.swarm.runner import run
from evolora.telemetry import RunDir
from evolora.telemetry.dashboard.app import create_app


def test_dashboard_draws_the_swarm_panels_of_a_run(tmp_path):
    cfg = RunConfig(objective="bbob:3:2", trials=80, checkpoint_every=40, swarm=SwarmConfig(seed=0))
    rundir = RunDir.create(tmp_path, cfg, seed=0, name="swarm")
    swarm = run(cfg, rundir)
    client = TestClient(create_app(tmp_path))
    answer = client.get("/api/panels", params={"run": rundir.path.name}).json()
    figures = {figure["id"]: figure for figure in answer["figures"]}
    assert list(figures) == ["progress", "diversity", "heatmap", "teams"]
    best = next(t for t in figures["progress"]["data"] if t["name"] == "best")
    assert best["y"][-1] == swarm.best_value and best["x"][-1] == 79
    assert figures["progress"]["layout"]["xaxis"]["title"]["text"] == "trial"
    where = {t["name"]: t for t in figures["heatmap"]["data"]}
    assert sum(len(t["x"]) for t in where.values()) == 80
    assert len(where["best 10 %"]["x"]) == 8
    assert all(0 <= x <= 1 for t in where.values() for x in t["x"])
    rows = {t["name"] for t in figures["teams"]["data"]}
    teams = {f"team {r['team']}" for r in rundir.read_stream("trials") if r["team"] is not None}
    assert teams == {row for row in rows if row.startswith("team ")} and len(teams) > 3
    decided = {e["event"] for e in rundir.read_stream("teams")}
    assert {"clone", "reallocate", "reseed", "retire"} & decided <= rows
    diversity = next(t for t in figures["diversity"]["data"] if t["name"] == "diversity")
    assert len(diversity["x"]) == 80 // swarm.supervisor_every  # one point per cycle
