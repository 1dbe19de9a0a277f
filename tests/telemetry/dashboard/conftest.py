"""Fixtures of the dashboard tests: a runs folder and a running ecology-shaped run."""

from __future__ import annotations

import pytest
from dashboard_helpers import CONFIG, write_generation

from evolora.telemetry import RunDir


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    return root


@pytest.fixture
def ecology_run(runs_root):
    """A locked (running) ecology-shaped run with three generations written."""
    run = RunDir.create(runs_root, CONFIG, name="ecology").lock()
    for generation in (1, 2, 3):
        write_generation(run, generation)
    yield run
    run.close()
