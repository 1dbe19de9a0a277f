"""RunDir: a new run never reuses a folder; metadata and config are recorded; open() checks."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from evolora import __version__
from evolora.errors import EvoloraError
from evolora.telemetry import RunDir
from evolora.telemetry.machine import git_commit
from evolora.telemetry.rundir import _claim_new_folder


class Energy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    m: float = 0.5


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = 7
    energy: Energy = Energy()
    families: list[str] = ["math", "logic"]


def test_create_writes_config_and_meta(tmp_path):
    run = RunDir.create(tmp_path / "runs", RunConfig(), name="ecology")
    assert run.path.parent == tmp_path / "runs"
    assert re.fullmatch(r"ecology-\d{8}-\d{6}", run.path.name)
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == {
        "seed": 7,
        "energy": {"m": 0.5},
        "families": ["math", "logic"],
    }
    assert run.config(RunConfig) == RunConfig()
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta == run.meta
    assert meta["evolora_version"] == __version__
    assert meta["seed"] == 7  # taken from the config when not passed
    assert datetime.fromisoformat(meta["started_at"]).tzinfo is not None
    assert meta["machine"]["nproc"] >= 1
    assert set(meta["machine"]) >= {"hostname", "cpu_model", "python", "torch"}
    commit = meta["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)


def test_explicit_seed_and_plain_dict_config(tmp_path):
    run = RunDir.create(tmp_path, {"seed": 1, "lr": 0.01}, seed=99)
    assert run.meta["seed"] == 99
    assert run.config() == {"seed": 1, "lr": 0.01}
    assert run.path.name.startswith("run-")


def test_git_commit_is_none_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) is None


def test_create_never_reuses_a_folder(tmp_path):
    runs = [RunDir.create(tmp_path, {"n": n}, name="same") for n in range(4)]
    assert len({run.path for run in runs}) == 4
    # the first run's files are untouched by the later ones
    assert runs[0].config() == {"n": 0}
    assert all(run.config() == {"n": n} for n, run in enumerate(runs))


def test_claim_skips_taken_names_and_leaves_their_contents(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "keep.txt").write_text("old")
    (tmp_path / "base-2").mkdir()
    assert _claim_new_folder(tmp_path, "base") == tmp_path / "base-3"
    assert (tmp_path / "base" / "keep.txt").read_text() == "old"
    assert _claim_new_folder(tmp_path, "base") == tmp_path / "base-4"


def test_open_reads_back_and_resumes_streams(tmp_path):
    created = RunDir.create(tmp_path, {"seed": 3})
    created.stream("episodes").append({"i": 0})
    created.close()
    with RunDir.open(created.path) as reopened:
        assert reopened.meta == created.meta
        reopened.stream("episodes").append({"i": 1})
        assert reopened.read_stream("episodes") == [{"i": 0}, {"i": 1}]


def test_open_rejects_what_is_not_a_run_folder(tmp_path):
    with pytest.raises(EvoloraError, match="does not exist"):
        RunDir.open(tmp_path / "missing")
    with pytest.raises(EvoloraError, match=r"is not an evolora run folder: it has no meta\.json"):
        RunDir.open(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(EvoloraError, match=r"meta\.json' is not readable JSON"):
        RunDir.open(tmp_path)
    (tmp_path / "meta.json").write_text("[1, 2]")
    with pytest.raises(EvoloraError, match="must hold a JSON object"):
        RunDir.open(tmp_path)


def test_bad_run_name_is_rejected(tmp_path):
    with pytest.raises(EvoloraError, match=r"Run name '\.\./x' is not usable"):
        RunDir.create(tmp_path, {}, name="../x")
    assert list(tmp_path.iterdir()) == []
