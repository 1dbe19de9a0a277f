"""The `evolora braid` commands end to end on a tiny pool of saved models, and bad inputs."""

from __future__ import annotations

import json

import pytest
import torch
from braid_models import tiny_host

from evolora.braid.pool import ModelPool, load_pool, profile_of
from evolora.cli import main
from evolora.errors import EvoloraError
from evolora.telemetry.dashboard.registry import run_figures
from evolora.telemetry.dashboard.runs import read_streams


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory, tokenizer):
    """A pool folder of two saved tiny models (kind hf)."""
    root = tmp_path_factory.mktemp("pool")
    profiles = []
    for seed in range(2):
        host = tiny_host(tokenizer, seed, name=f"m{seed}")
        folder = root / f"m{seed}"
        host.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        profiles.append(profile_of(host, f"m{seed}", "hf", str(folder),
                                   skill={"math": 0.1 * seed, "logic": 0.2}).describe())
    (root / "pool.json").write_text(json.dumps({"version": 1, "members": profiles}))
    return root


def test_train_resume_run_eval_report(pool_dir, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text(
        f"pool: {pool_dir}\nfamilies: [math, logic]\ndifficulties: [1]\nepisodes: 16\n"
        "batch: 4\ncheckpoint_every: 2\nmax_new_tokens: 4\n"
        "fusion: {steps: 2, batch: 4}\nbraider: {width: 16, depth: 1}\n")
    assert main(["braid", "train", "-c", str(config), "-o", str(tmp_path / "runs")]) == 0
    run = next((tmp_path / "runs").iterdir())
    updates = [json.loads(line) for line in (run / "updates.jsonl").read_text().splitlines()]
    assert len(updates) == 4 and all("entropy/strategy" in u for u in updates)
    assert len((run / "decisions.jsonl").read_text().splitlines()) == 16
    # A resumed finished run re-saves the same braider and adds no updates.
    assert main(["braid", "train", "--resume", str(run)]) == 0
    assert len((run / "updates.jsonl").read_text().splitlines()) == 4
    capsys.readouterr()
    assert main(["braid", "run", "math: 3+4=", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "decision" in out and "models:" in out and "answer" in out
    assert main(["braid", "eval", str(run), "--n", "8"]) == 0
    assert "MetaBraider" in capsys.readouterr().out
    assert main(["braid", "report", str(run), "--plots", "--html"]) == 0
    assert (run / "report" / "report.html").is_file()
    drawn = {f["id"]: f for f in run_figures("braid", read_streams(run), {})}
    assert set(drawn) == {"fusion", "training", "families"}
    assert all(any(trace["x"] for trace in f["data"]) for f in drawn.values())
    assert main(["braid", "pool", "list", str(pool_dir)]) == 0


def test_bad_inputs_exit_2(pool_dir, tmp_path):
    assert main(["braid", "pool", "list", str(tmp_path)]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("pool: x\nepisodes: 0\n")
    assert main(["braid", "train", "-c", str(bad), "-o", str(tmp_path)]) == 2
    bad.write_text("pool: x\nwhatever: 1\n")
    assert main(["braid", "train", "-c", str(bad), "-o", str(tmp_path)]) == 2


def test_empty_pool_and_foreign_tokenizer_are_one_sentence(tokenizer, pool_dir):
    with pytest.raises(EvoloraError, match="empty"):
        ModelPool([], [])
    other = tiny_host(tiny_tokenizer_other(), 0, name="x")
    mine = tiny_host(tokenizer, 0, name="y")
    with pytest.raises(EvoloraError, match="different tokenizers"):
        ModelPool([mine, other], [profile_of(h, h.name, "hf", h.name) for h in (mine, other)])
    assert load_pool(pool_dir).names == ["m0", "m1"]


def tiny_tokenizer_other():
    from evolora.hosts.tokenizer import train_tokenizer

    return train_tokenizer(["sort asc: 3 1 2 =1 2 3\n"] * 50, vocab_size=280)



def test_pool_make_writes_a_pool_with_checkpoints_and_lists_it(tmp_path, capsys):
    config = tmp_path / "pool.yaml"
    config.write_text("families: [math]\ndifficulties: [1]\nsteps: 2\nbatch_per_family: 2\n"
                      "skill_examples: 2\nmax_new_tokens: 2\ncheckpoint_every: 1\n")
    out = tmp_path / "pool"
    assert main(["braid", "pool", "make", "-c", str(config), "-o", str(out)]) == 0
    assert (out / "pool.json").is_file() and any((out / "checkpoints").iterdir())
    assert [m.name for m in load_pool(out).profiles] == ["host", "math-lora"]
    capsys.readouterr()
    assert main(["braid", "pool", "list", str(out)]) == 0
    assert "math-lora" in capsys.readouterr().out
    assert main(["braid", "pool", "make", "-c", str(config), "-o", str(out)]) == 2


def test_pool_combine_adds_another_pools_adapters_renamed(tmp_path, capsys):
    config = tmp_path / "pool.yaml"
    config.write_text("families: [math]\ndifficulties: [1]\nsteps: 2\nbatch_per_family: 2\n"
                      "skill_examples: 2\nmax_new_tokens: 2\n")
    first, second, both = tmp_path / "seed0", tmp_path / "seed1", tmp_path / "both"
    for seed, out in ((0, first), (1, second)):
        assert main(["braid", "pool", "make", "-c", str(config), "--seed", str(seed),
                     "-o", str(out)]) == 0
    assert main(["braid", "pool", "combine", str(first), str(second), "-o", str(both)]) == 0
    assert "math-lora-b" in capsys.readouterr().out
    combined, added = load_pool(both), load_pool(second)
    assert combined.names == ["host", "math-lora", "math-lora-b"]
    assert combined.profiles[2].domain == "math"
    ids = torch.tensor([[5, 9, 14, 3]])
    with torch.no_grad():
        logits = [m.model(ids).logits for m in (*combined.hosts, added.hosts[1])]
    torch.testing.assert_close(logits[2], logits[3])  # the added member is seed 1's adapter
    assert not torch.allclose(logits[1], logits[2])
    assert main(["braid", "pool", "combine", str(first), str(second), "-o", str(both)]) == 2
    assert main(["braid", "pool", "combine", str(first), str(first), "--suffix", "",
                 "-o", str(tmp_path / "clash")]) == 2
