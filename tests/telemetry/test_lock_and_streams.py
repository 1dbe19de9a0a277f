"""One writer per run folder (the lock), and `read_stream`, which counts each generation once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from evolora.errors import EvoloraError
from evolora.telemetry import RunDir, read_stream
from evolora.telemetry.config_io import layered
from evolora.telemetry.lock import lock_holder


def test_a_locked_run_folder_refuses_a_second_writer(tmp_path):
    run = RunDir.create(tmp_path, {"seed": 1}, name="ecology").lock()
    assert lock_holder(run.path)["pid"] == os.getpid()
    with pytest.raises(EvoloraError, match=f"in use by process {os.getpid()}"):
        RunDir.open(run.path).lock()
    run.close()
    assert lock_holder(run.path) is None
    RunDir.open(run.path).lock().close()  # free again once released


def test_a_killed_holder_frees_the_lock_but_leaves_its_name(tmp_path):
    run = RunDir.create(tmp_path, {"seed": 1}, name="ecology")
    code = (
        "import os, sys\n"
        "from evolora.telemetry import RunDir\n"
        "RunDir.open(sys.argv[1]).lock()\n"
        "os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(run.path)], check=False)
    holder = lock_holder(run.path)
    assert holder is not None and holder["alive"] is False  # what the dashboard calls crashed
    RunDir.open(run.path).lock().close()  # the kernel released the dead process's lock


def test_save_config_records_a_new_length(tmp_path):
    run = RunDir.create(tmp_path, {"seed": 1, "generations": 16}, name="ecology")
    run.save_config({"seed": 1, "generations": 18})
    assert RunDir.open(run.path).config()["generations"] == 18


def test_read_stream_keeps_only_each_generations_latest_attempt(tmp_path):
    run = RunDir.create(tmp_path, {"seed": 1}, name="ecology")
    for generation, attempt in [(1, 0), (2, 0), (3, 0), (3, 1), (4, 1)]:
        run.stream("gen_summaries").append({"generation": generation, "attempt": attempt})
    for generation, attempt in [(2, 0), (3, 0)]:  # the rerun of 3 wrote no episode
        run.stream("episodes").append({"generation": generation, "attempt": attempt})
    run.stream("episodes").append({"note": "no generation"})
    run.close()
    summaries = read_stream(run.path, "gen_summaries")
    assert [(r["generation"], r["attempt"]) for r in summaries] == [(1, 0), (2, 0), (3, 1), (4, 1)]
    assert [r.get("generation") for r in read_stream(run.path, "episodes")] == [None, 2]
    assert read_stream(run.path, "missing") == []
    raw = [json.loads(line) for line in (run.path / "gen_summaries.jsonl").read_text().split()]
    assert len(raw) == 5  # the file keeps every record; only the reader de-duplicates


def test_layered_merges_mappings_and_replaces_the_rest():
    base = {"host": "builtin", "lora": {"rank": 4, "alpha": 8.0}, "grid": {"families": ["a", "b"]}}
    mine = {"host": "/models/mine", "lora": {"rank": 2}, "grid": {"families": ["c"]}}
    assert layered(base, mine) == {
        "host": "/models/mine",
        "lora": {"rank": 2, "alpha": 8.0},
        "grid": {"families": ["c"]},
    }
