"""`evolora run`'s command-line overrides, on the tiny host saved as a model folder."""

from __future__ import annotations

import pytest
from ecology_helpers import small_config

from evolora.cli import main
from evolora.ecology.config import EcologyConfig
from evolora.telemetry.config_io import dump_config
from evolora.telemetry.rundir import RunDir


@pytest.fixture
def config_file(host_dir, tmp_path):
    path = tmp_path / "ecology.yaml"
    path.write_text(dump_config(small_config(host=str(host_dir), generations=2)))
    return path


def _only_run(folder):
    (run,) = folder.iterdir()
    return RunDir.open(run).config(EcologyConfig)


def test_overrides_reach_the_run_config(config_file, tmp_path):
    argv = ["run", "-c", str(config_file), "-o", str(tmp_path / "runs")]
    argv += ["--generations", "1", "--seed", "0", "--learning", "es, hebbian"]
    assert main(argv) == 0
    cfg = _only_run(tmp_path / "runs")
    assert (cfg.generations, cfg.seed, cfg.learning.rules) == (1, 0, ["es", "hebbian"])


def test_an_unknown_learning_rule_is_one_sentence_naming_the_field(config_file, tmp_path, capsys):
    argv = ["run", "-c", str(config_file), "-o", str(tmp_path / "runs"), "--learning", "sgd"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "learning.rules" in err and "sgd" in err and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_a_resumed_run_keeps_its_learning_rules(config_file, tmp_path, capsys):
    assert main(["run", "-c", str(config_file), "-o", str(tmp_path / "runs"), "-g", "1"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert main(["run", "--resume", str(run), "-g", "2", "--learning", "hebbian"]) == 2
    assert "--learning applies to new runs" in capsys.readouterr().err
    assert _only_run(tmp_path / "runs").learning.rules == ["backprop"]


def test_run_on_the_built_in_host_goes_end_to_end(tmp_path, capsys):
    config = small_config(
        host="builtin",
        generations=2,
        grid={"families": ["sorting"], "difficulties": [1], "max_new_tokens": 12},
        population={"initial": 1, "min": 1, "max": 2},
        evaluation={"every": 2, "per_cell": 4, "route_prompts": 4},
    )
    path = tmp_path / "builtin.yaml"
    path.write_text(dump_config(config))
    assert main(["run", "-c", str(path), "-o", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "colony vs host" in out and "95% interval" in out and "gradients through the host" in out
    (run,) = (tmp_path / "runs").iterdir()
    (evaluation,) = RunDir.open(run).read_stream("evaluations")
    assert evaluation["routed_vs_host"]["n"] == evaluation["host"]["n"] > 0


def test_the_run_folder_records_the_precision_the_host_ran_in(config_file, tmp_path):
    assert main(["run", "-c", str(config_file), "-o", str(tmp_path / "runs"), "-g", "1"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    recorded = RunDir.open(run).meta["host_precision"]
    assert recorded["precision"] == "fp32" and recorded["precision_requested"] == "fp32"
    assert main(["run", "--resume", str(run), "-g", "2"]) == 0


def test_precision_option_sets_the_hosts_precision(config_file, tmp_path):
    out = tmp_path / "runs"
    assert main(["run", "-c", str(config_file), "-o", str(out), "-g", "1",
                 "--precision", "bf16"]) == 0
    (run,) = out.iterdir()
    assert RunDir.open(run).meta["host_precision"]["precision"] == "bf16"
    assert main(["run", "--resume", str(run), "--precision", "fp32"]) == 2  # a run keeps its own
