"""A killed run resumes to exactly the uninterrupted run; the CLI runs, reports and rejects bad
configs with one sentence."""

from __future__ import annotations

import torch
from economy_helpers import tiny_config

from evolora.cli import main
from evolora.economy.adapters import lora_state
from evolora.economy.loop import Job
from evolora.telemetry import RunDir


def _config():
    # accumulation 2 puts checkpoints inside accumulation windows; patience 1 makes bursts fire
    return tiny_config(
        workload={"steps": 14, "checkpoint_every": 3},
        knobs={"accumulation": 2},
        bursts={"patience": 1, "window": 3},
    )


def test_resume_equals_an_uninterrupted_run(host, tmp_path):
    config = _config()
    whole = Job(config, RunDir.create(tmp_path / "a", config), host=host)
    whole.train()
    broken_run = RunDir.create(tmp_path / "b", config)
    Job(config, broken_run, host=host).train(stop_after=9)  # "killed" after the step-9 checkpoint
    resumed = Job(config, RunDir.open(broken_run.path), host=host)
    assert resumed.micro == 9
    resumed.train()
    a, b = lora_state(whole.model), lora_state(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.steering.economy.state() == resumed.steering.economy.state()
    assert whole.run.read_stream("proposals") == resumed.run.read_stream("proposals")
    assert whole.run.read_stream("market") == resumed.run.read_stream("market")
    assert whole.run.read_stream("bursts") == resumed.run.read_stream("bursts")
    assert whole.steering.economy.round >= 3


def test_cli_run_report_and_resume(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "workload: {task: sorting, steps: 8, batch_size: 4, rank: 2, max_rank: 4, "
        "targets: [q_proj], val_examples: 4, probe_examples: 4, test_per_cell: 1, "
        "max_new_tokens: 4, eval_every: 4, checkpoint_every: 4}\nagents: {decide_every: 2}\n"
        "search: {every: 1, patience: 1, factor: 30}\n"  # the market opens within 8 steps
    )
    assert main(["economy", "run", "-c", str(config), "-o", str(tmp_path / "runs")]) == 0
    folder = next((tmp_path / "runs").iterdir())
    assert str(folder) in capsys.readouterr().out.replace("\n", "")
    for stream in ("steps", "proposals", "market", "summary"):
        assert (folder / f"{stream}.jsonl").is_file()
    assert main(["economy", "report", str(folder), "--plots", "--html"]) == 0
    assert (folder / "report" / "report.html").is_file()
    assert main(["economy", "run", "--resume", str(folder), "--steps", "10", "--no-accuracy"]) == 0
    assert len(RunDir.open(folder).read_stream("summary")) == 2


def test_a_bad_config_is_one_sentence_and_exit_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("market: {budget: 0}\n")
    assert main(["economy", "run", "-c", str(config), "-o", str(tmp_path)]) == 2
    message = capsys.readouterr().err.strip()
    assert "market.budget" in message and len(message.splitlines()) == 1
    config.write_text("agents: {roles: [lr, fortune_telling]}\n")
    assert main(["economy", "run", "-c", str(config), "-o", str(tmp_path)]) == 2
    assert "agents.roles" in capsys.readouterr().err
    assert main(["economy", "run", "--task", "astrology", "-o", str(tmp_path / "r")]) == 2
    assert "Unknown task grid 'astrology'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
