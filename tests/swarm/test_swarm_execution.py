"""Asynchronous trial execution: a slow trial does not stall the rest, and a killed worker costs
its trial a retry, not the study (worker processes and a local 2-CPU Ray cluster)."""

from __future__ import annotations

import os
import threading

import pytest
from swarm_objectives import bowl

from evolora.swarm import Swarm, SwarmConfig
from evolora.swarm.config import RunConfig
from evolora.swarm.runner import run
from evolora.telemetry import RunDir

BOX = {
    "x": {"kind": "float", "low": -3.0, "high": 3.0},
    "y": {"kind": "float", "low": -3.0, "high": 3.0},
}


class FirstWaits:
    """The bowl, but the first call blocks until `others` later calls have finished: a batch
    that waited for all its trials would never get there (the wait then times out and fails)."""

    def __init__(self, others: int) -> None:
        self.others, self.calls, self.finished = others, 0, 0
        self.lock, self.released = threading.Lock(), threading.Event()

    def __call__(self, params: dict) -> float:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first and not self.released.wait(timeout=20):
            raise TimeoutError("the other trials never ran while this one was slow")
        with self.lock:
            self.finished += 1
            if self.finished >= self.others:
                self.released.set()
        return bowl(params)


def test_a_slow_trial_does_not_stall_the_others():
    swarm = Swarm(BOX, SwarmConfig(seed=0))
    swarm.optimize(FirstWaits(others=10), 30, workers=2)
    slow = swarm.trials[0]
    assert slow.state == "complete", slow.error
    assert slow.asked >= 11  # told after at least 10 later trials had finished
    assert all(t.state == "complete" for t in swarm.trials) and len(swarm.trials) == 30


def test_one_worker_is_reproducible_and_async_runs_every_trial_once():
    first, second = Swarm(BOX, SwarmConfig(seed=2)), Swarm(BOX, SwarmConfig(seed=2))
    first.optimize(bowl, 60)
    second.optimize(bowl, 60, executor="local", workers=1)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    threaded = Swarm(BOX, SwarmConfig(seed=2))
    threaded.optimize(bowl, 60, workers=3)
    assert [t.number for t in threaded.trials] == list(range(60))
    assert all(t.value == pytest.approx(bowl(t.params)) for t in threaded.trials)


@pytest.fixture
def dying(tmp_path, monkeypatch):
    """Arms `swarm_objectives:dies_once`: its first call in a worker kills that worker."""
    marker = tmp_path / "killed"
    monkeypatch.setenv("SWARM_DIE_MARKER", str(marker))
    monkeypatch.setenv("SWARM_TEST_PID", str(os.getpid()))
    return marker


def test_a_killed_worker_process_costs_its_trial_a_retry(dying):
    from swarm_objectives import dies_once

    swarm = Swarm(BOX, SwarmConfig(seed=0))
    swarm.optimize(dies_once, 12, executor="process", workers=2)
    assert dying.exists()  # a worker was killed...
    assert [t.state for t in swarm.trials] == ["complete"] * 12  # ...and its trial retried
    assert all(t.value == pytest.approx(bowl(t.params)) for t in swarm.trials)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_cluster_runs_the_study_and_survives_a_killed_worker(tmp_path, dying):
    pytest.importorskip("ray")
    os.environ["RAY_DISABLE_USAGE_STATS"] = "1"
    cfg = RunConfig(
        objective="swarm_objectives:dies_once",
        trials=16,
        space=BOX,
        executor="ray",
        workers=2,
        swarm=SwarmConfig(seed=0),
    )
    rundir = RunDir.create(tmp_path / "runs", cfg, seed=0, name="swarm")
    swarm = run(cfg, rundir)
    records = rundir.read_stream("trials")
    assert dying.exists()
    assert sorted(r["trial"] for r in records) == list(range(16))
    assert all(r["state"] == "complete" for r in records)
    assert all(r["value"] == pytest.approx(bowl(r["params"])) for r in records)
    assert swarm.best_value == min(r["value"] for r in records)
