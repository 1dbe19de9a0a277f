"""`evolora run / export` on a user's own model: config layering, --host, run-folder lifetime
(no orphans, generation-0 checkpoint, lock, extended runs), memory refusal, exported modes."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
import yaml
from ecology_helpers import small_config

from evolora.cli import main
from evolora.ecology.commands import new_config, preset_path
from evolora.ecology.config import EcologyConfig
from evolora.telemetry.config_io import dump_config
from evolora.telemetry.rundir import RunDir


@pytest.fixture
def config_file(host_dir, tmp_path):
    path = tmp_path / "ecology.yaml"
    path.write_text(dump_config(small_config(host=str(host_dir), generations=2)))
    return path


def _runs(folder):
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_yaml_holding_only_the_host_layers_on_the_default_preset(host_dir, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"host: {host_dir}\nlora: {{rank: 2}}\n")
    cfg = new_config(str(mine), None, None, None, None)
    preset = yaml.safe_load(preset_path("default").read_text())
    assert cfg.host == str(host_dir.resolve())
    assert cfg.generations == preset["generations"] != EcologyConfig().generations
    assert cfg.energy.m == preset["energy"]["m"] != EcologyConfig().energy.m
    assert (cfg.lora.rank, cfg.lora.alpha) == (2, preset["lora"]["alpha"])


def test_host_flag_and_a_relative_host_path_are_stored_resolved(
    config_file, host_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(host_dir.parent)
    cfg = new_config(str(config_file), host_dir.name, None, None, None)
    assert cfg.host == str(host_dir.resolve())
    relative = tmp_path / "relative.yaml"
    relative.write_text(f"host: ./{host_dir.name}\n")
    assert new_config(str(relative), None, None, None, None).host == str(host_dir.resolve())


def test_an_unknown_family_names_the_file_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {families: [math, poetry]}\n")
    assert main(["run", "-c", str(bad), "-o", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err.replace("\n", "") and "grid" in err and "poetry" in err
    assert _runs(tmp_path / "runs") == []


@pytest.mark.parametrize("lora", [{"targets": ["no_such_proj"]}, {"rank": 4096, "basis": "host"}])
def test_a_failure_after_loading_leaves_no_orphan_run_folder(host_dir, tmp_path, lora):
    path = tmp_path / "bad.yaml"
    path.write_text(dump_config(small_config(host=str(host_dir), lora=lora)))
    assert main(["run", "-c", str(path), "-o", str(tmp_path / "runs")]) == 2
    assert _runs(tmp_path / "runs") == []


def test_a_huge_population_is_refused_before_allocating(host_dir, tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    huge = {"initial": 3, "min": 2, "max": 10**9}
    path.write_text(dump_config(small_config(host=str(host_dir), population=huge)))
    assert main(["run", "-c", str(path), "-o", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "population.max" in err and "GiB" in err
    assert _runs(tmp_path / "runs") == []


def test_a_run_killed_in_its_first_generation_resumes_from_generation_0(
    config_file, tmp_path, monkeypatch
):
    from evolora.ecology.loop import Ecology

    def killed(self):
        raise KeyboardInterrupt  # the run stops inside generation 1

    with monkeypatch.context() as patch:
        patch.setattr(Ecology, "step", killed)
        assert main(["run", "-c", str(config_file), "-o", str(tmp_path / "runs")]) == 130
    (run,) = _runs(tmp_path / "runs")
    assert [p.name for p in sorted((run / "checkpoints").glob("*.json"))] == ["step_000000.json"]
    assert main(["run", "--resume", str(run)]) == 0
    assert RunDir.open(run).read_stream("gen_summaries")[-1]["generation"] == 2


def test_a_folder_without_any_checkpoint_says_why_it_cannot_resume(tmp_path, capsys):
    run = RunDir.create(tmp_path / "runs", small_config(), name="ecology")
    run.close()
    assert main(["run", "--resume", str(run.path)]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err


def test_resume_locks_the_folder_saves_its_length_and_refuses_new_settings(
    config_file, tmp_path, capsys
):
    assert main(["run", "-c", str(config_file), "-o", str(tmp_path / "runs"), "-g", "1"]) == 0
    (run,) = _runs(tmp_path / "runs")
    for flag in (["--seed", "5"], ["--config", "debug"], ["--host", "builtin"]):
        assert main(["run", "--resume", str(run), *flag]) == 2
        assert f"{flag[0]} applies to new runs" in capsys.readouterr().err

    holder = RunDir.open(run).lock()  # another writer holds the run
    assert main(["run", "--resume", str(run), "-g", "2"]) == 2
    assert f"is in use by process {os.getpid()}" in capsys.readouterr().err.replace("\n", "")
    holder.close()

    assert main(["run", "--resume", str(run), "-g", "2"]) == 0
    assert RunDir.open(run).config(EcologyConfig).generations == 2
    assert main(["report", str(run)]) == 0
    assert "2 of 2" in capsys.readouterr().out.replace("\n", " ")


def test_a_cuda_device_on_a_machine_without_cuda_is_one_line(config_file, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = ["run", "-c", str(config_file), "-o", str(tmp_path / "runs"), "--device", "cuda"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "needs CUDA" in err and "\n" not in err
    assert _runs(tmp_path / "runs") == []


def test_exported_files_follow_the_umask(config_file, tmp_path):
    assert main(["run", "-c", str(config_file), "-o", str(tmp_path / "runs"), "-g", "1"]) == 0
    (run,) = _runs(tmp_path / "runs")
    old = os.umask(0o022)
    try:
        assert main(["export", str(run), str(tmp_path / "out"), "--member", "merged"]) == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "out").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_the_routed_colony_exports_and_evaluate_loads_it(config_file, host_dir, tmp_path):
    from evolora.ecology.colony import MERGED_SLOT
    from evolora.ecology.loop import Ecology
    from evolora.hosts import load_host
    from evolora.tasks import TaskGrid

    assert main(["run", "-c", str(config_file), "-o", str(tmp_path / "runs")]) == 0
    (run,) = _runs(tmp_path / "runs")
    out = tmp_path / "colony"
    assert main(["export", str(run), str(out), "--member", "colony"]) == 0
    table = json.loads((out / "routing.json").read_text())
    cfg = RunDir.open(run).config(EcologyConfig)
    ecology = Ecology.resume(cfg, load_host(cfg.host), RunDir.open(run))
    names = {o.slot: f"organelle-{o.id}" for o in ecology.colony.organelles}
    names[MERGED_SLOT] = "merged"
    routes = ecology.routes()
    for family, difficulty in TaskGrid(cfg.grid.families, cfg.grid.difficulties).cells:
        slot = routes[(family, difficulty)]
        assert table["routes"].get(f"{family}:{difficulty}", "merged") == names[slot]
    ecology.close()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(table["adapters"])
    data = tmp_path / "mine.jsonl"
    data.write_text('{"prompt": "math: 1+1=", "answer": "2"}\n{"prompt": "x =", "answer": "y"}\n')
    result_file = tmp_path / "result.json"
    argv = ["evaluate", "--host", str(host_dir), "--adapter", str(out), "--dataset", str(data),
            "--max-new-tokens", "3", "--out", str(result_file)]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(result_file.read_text())["n"] == 2
