"""The `evolora reso` commands run end to end on a tiny model; a killed run resumes."""

import json

import yaml

from evolora.cli import main
from evolora.telemetry import RunDir

DEBUG = {
    "seed": 0,
    "model": {"preset": "tiny", "max_positions": 64},
    "data": {"seq_len": 32},
    "optim": {"steps": 4, "batch_size": 2, "warmup_steps": 1, "checkpoint_every": 2},
    "eval_every": 2,
    "eval_rows": 2,
    "max_plays": 1,
}


def write_config(tmp_path, **changes):
    path = tmp_path / "reso.yaml"
    path.write_text(yaml.safe_dump({**DEBUG, **changes}))
    return path


def test_train_generate_report_and_chat(tmp_path, capsys, monkeypatch):
    assert main(["reso", "train", "-c", str(write_config(tmp_path)), "-o",
                 str(tmp_path / "runs")]) == 0
    run = next((tmp_path / "runs").glob("reso-*"))
    assert "reso run folder" in capsys.readouterr().out
    metrics = RunDir.open(run).read_stream("metrics")
    assert len(metrics) == 4 and "kuramoto/order" in metrics[-1]
    assert main(["reso", "generate", "ROMEO:", "-m", str(run), "-n", "4", "--json",
                 "--goal", "the crown"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens_generated"] <= 4 and "the crown" in result["goal_progress"]
    assert main(["reso", "report", str(run), "--plots", "--html"]) == 0
    assert (run / "report" / "report.html").is_file()
    lines = iter(["status", "goal kings", "hello", "metrics", "exit"])
    monkeypatch.setattr("rich.console.Console.input", lambda self, prompt="": next(lines))
    assert main(["reso", "chat", "-m", str(run), "-n", "3"]) == 0
    assert "goal set: kings" in capsys.readouterr().out


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    import torch
    from safetensors.torch import load_file

    config = write_config(tmp_path)
    assert main(["reso", "train", "-c", str(config), "-o", str(tmp_path / "a")]) == 0
    assert main(["reso", "train", "-c", str(config), "-o", str(tmp_path / "b"),
                 "--steps", "2"]) == 0
    run_b = next((tmp_path / "b").glob("reso-*"))
    data = yaml.safe_load((run_b / "config.yaml").read_text())
    data["optim"]["steps"] = 4  # the interrupted run was meant to go on
    (run_b / "config.yaml").write_text(yaml.safe_dump(data))
    assert main(["reso", "train", "--resume", str(run_b)]) == 0
    run_a = next((tmp_path / "a").glob("reso-*"))
    full = load_file(run_a / "model" / "model.safetensors")
    resumed = load_file(run_b / "model" / "model.safetensors")
    assert all(torch.allclose(full[k], resumed[k], atol=1e-6) for k in full)


def test_unknown_extension_or_knob_exits_2_with_one_line(tmp_path, capsys):
    assert main(["reso", "train", "--ablate", "warp_drive", "-o", str(tmp_path)]) == 2
    bad = write_config(tmp_path, model={"preset": "tiny", "sections": {"agency": {"foci": 3}}})
    assert main(["reso", "train", "-c", str(bad), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "warp_drive" in err and "foci" in err


def test_extra_text_in_the_guanaco_schema_loads_and_a_bad_one_is_one_sentence(tmp_path):
    import pytest

    from evolora.errors import EvoloraError
    from evolora.reso.train import load_extra_text

    good = tmp_path / "guanaco.jsonl"
    good.write_text('{"text": "### Human: hi### Assistant: hello"}\n{"text": "more"}\n')
    assert load_extra_text(str(good)) == ["### Human: hi### Assistant: hello\nmore"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "no text column"}\n')
    with pytest.raises(EvoloraError, match="'text'"):
        load_extra_text(str(bad))
