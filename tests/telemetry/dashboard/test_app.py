"""The dashboard's API: listing, status, panels, comparison; hostile requests get a 4xx."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from dashboard_helpers import CONFIG, write_generation
from starlette.testclient import TestClient

from evolora.telemetry import RunDir
from evolora.telemetry.dashboard import register_panels
from evolora.telemetry.dashboard.app import create_app
from evolora.telemetry.report import Panel


@pytest.fixture
def client(runs_root):
    return TestClient(create_app(runs_root))


def rel(run: RunDir, root) -> str:
    return run.path.relative_to(root).as_posix()


def test_index_lists_runs_with_their_status(client, runs_root, ecology_run):
    finished = RunDir.create(runs_root / "nested", {"generations": 2}, name="ecology")
    for generation in (1, 2):
        write_generation(finished, generation)
    finished.close()
    stopped = RunDir.create(runs_root, {"generations": 9}, name="other")
    stopped.stream("gen_summaries").append({"generation": 1})
    stopped.close()
    runs = {r["run"]: r for r in client.get("/api/runs").json()["runs"]}
    assert runs[rel(ecology_run, runs_root)]["status"] == "running"
    assert runs[rel(ecology_run, runs_root)]["done"] == 3
    assert runs[rel(finished, runs_root)]["status"] == "finished"
    assert runs[rel(stopped, runs_root)]["status"] == "stopped"
    assert client.get("/").status_code == 200


def test_a_lock_left_by_a_dead_process_reads_as_crashed(client, runs_root, ecology_run):
    lock = ecology_run.path / "run.lock"
    ecology_run.close()  # releases and empties the lock ...
    holder = {"pid": 2**22 + 12345, "host": os.uname().nodename, "since": "then"}
    lock.write_text(json.dumps(holder))  # ... as a SIGKILLed process would not have
    status = client.get("/api/version", params={"run": rel(ecology_run, runs_root)}).json()
    assert status["status"] == "crashed"


def test_panels_follow_the_streams_and_count_each_generation_once(
    client, runs_root, ecology_run
):
    name = rel(ecology_run, runs_root)
    first = client.get("/api/panels", params={"run": name}).json()
    ids = [f["id"] for f in first["figures"]]
    assert ids == ["energy", "roi", "population", "species", "prices", "accuracy", "assimilation"]
    energy = first["figures"][0]["data"][0]
    assert energy["x"] == [1, 2, 3]
    write_generation(ecology_run, 3, attempt=1)  # a resumed run repeats generation 3
    write_generation(ecology_run, 4, attempt=1)
    second = client.get("/api/panels", params={"run": name}).json()
    assert second["version"] != first["version"]
    assert second["figures"][0]["data"][0]["x"] == [1, 2, 3, 4]
    accuracy = next(f for f in second["figures"] if f["id"] == "accuracy")
    routed = next(t for t in accuracy["data"] if t["name"] == "routed")
    assert routed["error_y"]["array"][0] == pytest.approx(1.96 * (0.6 * 0.4 / 10) ** 0.5)


def test_a_registered_system_gets_its_own_panels(client, runs_root):
    run = RunDir.create(runs_root, {"steps": 5}, name="swarmtest")
    run.stream("trials").append({"step": 1, "loss": 2.0, "lr": 0.1})
    run.close()
    generic = client.get("/api/panels", params={"run": rel(run, runs_root)}).json()
    assert [f["id"] for f in generic["figures"]] == ["trials"]
    register_panels(
        "swarmtest",
        lambda streams, config: {
            "best": ("Best loss", [Panel("loss", {"loss": ([1], [streams["trials"][0]["loss"]])})])
        },
    )
    own = client.get("/api/panels", params={"run": rel(run, runs_root)}).json()
    assert [f["id"] for f in own["figures"]] == ["best"]
    assert own["figures"][0]["data"][0]["y"] == [2.0]


def test_meta_config_streams_and_comparison(client, runs_root, ecology_run):
    baseline = RunDir.create(runs_root, CONFIG, name="ecology")
    write_generation(baseline, 1)
    baseline.close()
    name = rel(ecology_run, runs_root)
    meta = client.get("/api/meta", params={"run": name}).json()
    assert meta["meta"]["name"] == "ecology" and "generations: 30" in meta["config"]
    assert set(meta["streams"]) == {"episodes", "gen_summaries", "evaluations", "assimilation"}
    page = client.get("/api/stream", params={"run": name, "name": "gen_summaries", "start": 1,
                                              "limit": 1}).json()
    assert [r["generation"] for r in page["records"]] == [2]
    fields = client.get("/api/fields", params={"run": name}).json()["fields"]
    assert "energy/gini" in fields
    both = [("run", name), ("run", rel(baseline, runs_root)), ("key", "energy/mean")]
    figure = client.get("/api/compare", params=both).json()["figure"]
    assert [t["name"] for t in figure["data"]] == [name, rel(baseline, runs_root)]
    assert [len(t["x"]) for t in figure["data"]] == [3, 1]


def test_survives_a_torn_last_line_and_a_deleted_run(client, runs_root, ecology_run):
    name = rel(ecology_run, runs_root)
    with open(ecology_run.path / "gen_summaries.jsonl", "ab") as handle:
        handle.write(b'{"generation": 4, "energy/me')  # a writer killed mid-record
    figures = client.get("/api/panels", params={"run": name}).json()["figures"]
    assert figures[0]["data"][0]["x"] == [1, 2, 3]
    ecology_run.close()
    shutil.rmtree(ecology_run.path)
    for path in ("/api/panels", "/api/version", "/api/meta"):
        assert client.get(path, params={"run": name}).status_code == 404
    assert client.get("/api/runs").json()["runs"] == []


@pytest.mark.parametrize(
    "query",
    [
        "run=..",
        "run=../..",
        "run=..%2F..%2Fetc",
        "run=%2E%2E%2F%2E%2E",
        "run=ok%2F..%2F..",
        "run=%252E%252E%252F",
        "run=/etc",
        "run=%2Fetc",
        "run=C:%5Cwindows",
        "run=a%5C..%5C..",
        "run=a%00b",
        "run=",
    ],
)
def test_traversal_and_absolute_paths_are_refused(client, ecology_run, query):
    for path in ("/api/meta", "/api/panels", "/api/version", "/api/stream"):
        response = client.get(f"{path}?{query}&name=gen_summaries")
        assert 400 <= response.status_code < 500, (path, query)
        assert "error" in response.json()


def test_symlinks_out_of_the_runs_folder_are_refused(client, runs_root, ecology_run, tmp_path):
    outside = RunDir.create(tmp_path / "elsewhere", CONFIG, name="ecology")
    write_generation(outside, 1)
    outside.close()
    (runs_root / "escape").symlink_to(outside.path, target_is_directory=True)
    (ecology_run.path / "stolen.jsonl").symlink_to(outside.path / "gen_summaries.jsonl")
    assert client.get("/api/meta", params={"run": "escape"}).status_code == 403
    stolen = {"run": rel(ecology_run, runs_root), "name": "stolen"}
    assert client.get("/api/stream", params=stolen).status_code == 403
    assert [r["run"] for r in client.get("/api/runs").json()["runs"]] == [
        rel(ecology_run, runs_root)
    ]


@pytest.mark.parametrize(
    "bounds", [{"limit": 10**12}, {"limit": 0}, {"start": -1}, {"start": "x"}, {"limit": 5001}]
)
def test_unbounded_ranges_are_refused(client, runs_root, ecology_run, bounds):
    params = {"run": rel(ecology_run, runs_root), "name": "gen_summaries", **bounds}
    assert client.get("/api/stream", params=params).status_code == 400


def test_read_only_and_bound_to_known_hosts(client):
    assert client.post("/api/runs").status_code == 405
    assert client.delete("/api/runs").status_code == 405
    assert client.get("/api/runs", headers={"host": "attacker.example"}).status_code == 400
    assert client.get("/api/compare?" + "&".join(["run=a"] * 13) + "&key=k").status_code == 400


def test_the_command_serves_this_machine_only_by_default(runs_root, monkeypatch, capsys):
    import uvicorn

    from evolora.cli import main

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(kwargs))
    assert main(["dashboard", str(runs_root), "--port", "9123"]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 9123)
    assert "http://127.0.0.1:9123" in capsys.readouterr().out
    assert main(["dashboard", str(runs_root / "missing")]) == 2
