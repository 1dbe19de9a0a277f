"""`train_full_member` and `evolora braid pool train-member`: every weight of the built-in host
learns (the loss on a fixed batch falls), a killed run continues to the same weights, the saved
folder loads as a host with identical logits, and bad input is one sentence (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from braid_models import probe_logits, tiny_host

from evolora.braid.member_train import train_full_member
from evolora.braid.pool_add import save_model_folder
from evolora.braid.pool_make import answer_loss
from evolora.cli import main
from evolora.errors import EvoloraError
from evolora.hosts import load_host
from evolora.tasks import TaskGrid


def test_every_weight_learns_the_family(tokenizer, tmp_path):
    folder = str(save_model_folder(tiny_host(tokenizer, 0), tmp_path / "tiny"))
    batch = TaskGrid(["math"], [1]).sample_batch(np.random.default_rng(7), 32, split="train")
    before = float(answer_loss(load_host(folder), batch).detach())
    losses = []
    member = train_full_member(folder, "math", [1], 15, 1e-2, 0,
                               on_step=lambda step, loss: losses.append(loss))
    after = float(answer_loss(member, batch).detach())
    assert len(losses) == 15
    assert after < 0.7 * before
    assert not any(p.requires_grad for p in member.model.parameters())


def test_a_killed_run_continues_to_the_weights_of_an_unbroken_one(tmp_path):
    whole = train_full_member("builtin", "logic", [1, 2], 5, 1e-3, 3)

    def kill(step, loss):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_full_member("builtin", "logic", [1, 2], 5, 1e-3, 3, on_step=kill,
                          checkpoints=tmp_path, checkpoint_every=2)
    done = []
    resumed = train_full_member("builtin", "logic", [1, 2], 5, 1e-3, 3, checkpoints=tmp_path,
                                checkpoint_every=2, on_step=lambda step, loss: done.append(step))
    assert done == [3, 4, 5]  # from the step-2 checkpoint
    for a, b in zip(whole.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(EvoloraError, match="other settings"):
        train_full_member("builtin", "logic", [1, 2], 5, 2e-3, 3, checkpoints=tmp_path)


def test_the_command_saves_a_member_that_loads_with_identicalprobe_logits(tmp_path, capsys):
    out = tmp_path / "member"
    assert main(["braid", "pool", "train-member", "math", "--out", str(out), "--steps", "3",
                 "--seed", "1", "--difficulty", "1", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"evolora braid pool add POOL {out} --name math-full --domain math" in printed
    assert not (out / "checkpoints").exists()
    expected = train_full_member("builtin", "math", [1], 3, 1e-3, 1, device="cpu")
    loaded = load_host(str(out))
    torch.testing.assert_close(probe_logits(loaded), probe_logits(expected))
    assert not torch.allclose(probe_logits(loaded), probe_logits(load_host("builtin")))


def test_bad_input_exits_2(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("keep\n")
    fresh = str(tmp_path / "fresh")
    assert main(["braid", "pool", "train-member", "poetry", "--out", fresh]) == 2
    assert main(["braid", "pool", "train-member", "math", "--out", fresh, "--steps", "0"]) == 2
    assert main(["braid", "pool", "train-member", "math", "--out", fresh, "--lr", "0"]) == 2
    assert main(["braid", "pool", "train-member", "math", "--out", fresh,
                 "--difficulty", "9"]) == 2
    assert main(["braid", "pool", "train-member", "math", "--out", str(used)]) == 2
    assert (used / "notes.txt").read_text() == "keep\n"
