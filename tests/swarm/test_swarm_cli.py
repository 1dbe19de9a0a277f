"""`evolora swarm run / report`: run folder, resume after a kill, bad input in one sentence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from swarm_objectives import bowl

from evolora.cli import main

HERE = Path(__file__).parent


def run_folder(root: Path) -> Path:
    [folder] = list(root.glob("swarm-*"))
    return folder


def records(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    path = tmp_path / "bowl.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "objective": "swarm_objectives:bowl",
                "trials": 60,
                "checkpoint_every": 10,
                "space": {
                    "x": {"kind": "float", "low": -3, "high": 3},
                    "y": {"kind": "float", "low": -3, "high": 3},
                },
                "swarm": {"seed": 2},
            }
        )
    )
    return path


def test_run_writes_trials_teams_checkpoints_and_report(tmp_path, user_config, capsys):
    assert main(["swarm", "run", "-c", str(user_config), "-o", str(tmp_path / "a")]) == 0
    folder = run_folder(tmp_path / "a")
    assert str(folder) in capsys.readouterr().out.replace("\n", "")
    trials = records(folder, "trials")
    assert [t["trial"] for t in trials] == list(range(60))
    events = records(folder, "teams")
    assert events[0]["event"] == "start" and events[0]["direction"] == "minimize"
    assert all(e["reason"] for e in events)
    assert list((folder / "checkpoints").glob("step_000060.json"))
    assert main(["swarm", "report", str(folder), "--html"]) == 0
    for name in ("progress.png", "heatmap.png", "team_tree.png", "index.html"):
        assert (folder / "report" / name).stat().st_size > 1000


@pytest.mark.parametrize("workers", ["1", "3"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, user_config, workers):
    args = ["swarm", "run", "-c", str(user_config), "--workers", workers]
    assert main([*args, "-o", str(tmp_path / "full")]) == 0
    full = run_folder(tmp_path / "full")
    # A copy "killed" after trial 36: later records gone, a torn line, later checkpoints gone.
    killed = tmp_path / "killed" / full.name
    shutil.copytree(full, killed)
    lines = (killed / "trials.jsonl").read_text().splitlines(keepends=True)
    (killed / "trials.jsonl").write_text("".join(lines[:37]) + lines[37][:20])
    for path in (killed / "checkpoints").glob("*step_0000[4-6]*"):
        path.unlink()
    shutil.rmtree(killed / "report", ignore_errors=True)
    assert main(["swarm", "run", "--resume", str(killed)]) == 0
    resumed, original = records(killed, "trials"), records(full, "trials")
    assert sorted(t["trial"] for t in resumed) == list(range(60))
    assert resumed[:37] == original[:37]  # the replay re-proposed every recorded point
    if workers == "1":  # one at a time is reproducible; three threads finish in any order
        assert [t["value"] for t in resumed] == [t["value"] for t in original]


def test_resume_with_more_trials_extends_the_run(tmp_path, user_config):
    out = tmp_path / "runs"
    assert main(["swarm", "run", "-c", str(user_config), "-o", str(out), "-n", "30"]) == 0
    folder = run_folder(out)
    assert main(["swarm", "run", "--resume", str(folder), "-n", "60"]) == 0
    # The run keeps the horizon it was started with (30), which paces its hierarchy.
    assert yaml.safe_load((folder / "config.yaml").read_text())["swarm"]["horizon"] == 30
    paced = yaml.safe_load(user_config.read_text())
    paced["swarm"]["horizon"] = 30
    user_config.write_text(yaml.safe_dump(paced))
    assert main(["swarm", "run", "-c", str(user_config), "-o", str(tmp_path / "one")]) == 0
    straight = records(run_folder(tmp_path / "one"), "trials")
    assert [t["value"] for t in records(folder, "trials")] == [t["value"] for t in straight]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--objective", "bbob:99:2"], ["bbob", "FID in 1-24"]),
        (["--objective", "nosuchmodule:fn"], ["nosuchmodule"]),
        (["--objective", "sklearn:svc:mnist"], ["sklearn:MODEL:DATASET"]),
    ],
)
def test_bad_objectives_stop_with_one_sentence(tmp_path, capsys, args, words):
    assert main(["swarm", "run", "-o", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    for word in words:
        assert word in err
    assert not list(tmp_path.glob("swarm-*"))


def test_process_executor_runs_trials_in_worker_processes(tmp_path, user_config):
    args = ["swarm", "run", "-c", str(user_config), "-n", "8", "--workers", "2"]
    assert main([*args, "--executor", "process", "-o", str(tmp_path / "p")]) == 0
    here = records(run_folder(tmp_path / "p"), "trials")
    assert sorted(t["trial"] for t in here) == list(range(8))
    assert all(t["value"] == pytest.approx(bowl(t["params"])) for t in here)


def test_bad_space_in_config_names_the_parameter(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "objective": "swarm_objectives:bowl",
                "space": {"lr": {"kind": "float", "low": 0, "high": 1, "log": True}},
            }
        )
    )
    assert main(["swarm", "run", "-c", str(path), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'lr'" in err and "low > 0" in err
