"""`execution: ray`: learning sharded over a local 2-CPU Ray cluster equals a local run."""

from __future__ import annotations

import pytest
import torch
from ecology_helpers import small_config

from evolora.ecology.colony import MERGED_SLOT
from evolora.ecology.loop import Ecology
from evolora.ecology.state import learning_state
from evolora.hosts import load_host
from evolora.telemetry.rundir import RunDir

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster():
    """One local 2-CPU cluster for the module (each run's shards join it, not start their own)."""
    from evolora.execution.ray_executor import RayExecutor

    executor = RayExecutor(num_cpus=2)
    yield
    executor.close()


def _run(engine: str, host_dir, tmp_path, rules: list[str]):
    config = small_config(
        host=str(host_dir),
        generations=2,
        learning={"rules": rules, "steps": 2},
        execution={"engine": engine, "workers": 2},
    )
    run = RunDir.create(tmp_path / engine, config, name="ecology")
    ecology = Ecology.start(config, load_host(str(host_dir)), run)
    try:
        while not ecology.finished:
            summary = ecology.step()
        # Scratch slots are the rules' workspace, rewritten before each use: not compared.
        kept = [MERGED_SLOT] + [o.slot for o in ecology.colony.organelles]
        state = {k: v[kept] for k, v in learning_state(ecology.population, ecology.rules).items()}
        energies = [o.energy for o in ecology.colony.organelles]
    finally:
        ecology.close()
    return summary, state, energies


@pytest.mark.parametrize("rules", [["backprop"], ["es", "hebbian"]])
def test_a_sharded_run_learns_what_a_local_run_learns(ray_cluster, host_dir, tmp_path, rules):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a one-CPU actor: the same float reductions
    try:
        local = _run("local", host_dir, tmp_path, rules)
        sharded = _run("ray", host_dir, tmp_path, rules)
    finally:
        torch.set_num_threads(threads)
    (local_summary, local_state, local_energy) = local
    (ray_summary, ray_state, ray_energy) = sharded
    assert local_summary["learning/fitness"] != 0.0
    assert ray_summary["learning/fitness"] == pytest.approx(local_summary["learning/fitness"])
    assert ray_energy == pytest.approx(local_energy)
    assert local_state.keys() == ray_state.keys()
    for key, tensor in local_state.items():
        assert torch.equal(tensor, ray_state[key]), key
