"""Checkpoints: atomic, checksummed, pruned; an interrupted save never costs the previous one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch

from evolora.errors import EvoloraError
from evolora.telemetry import RunDir
from evolora.telemetry.checkpoint import list_checkpoints, load_checkpoint


def weights(step: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(step)
    return {
        "lora.A": torch.randn(4, 8, generator=generator),
        "lora.B": torch.full((8, 4), float(step), dtype=torch.bfloat16),
        "counts": torch.arange(step + 1, dtype=torch.int64),
    }


@pytest.fixture
def run(tmp_path):
    return RunDir.create(tmp_path, {"seed": 0}, name="ckpt")


def names(run: RunDir) -> list[str]:
    return sorted(path.name for path in run.checkpoint_dir.iterdir())


def test_round_trip_tensors_state_and_checksum_record(run):
    path = run.save_checkpoint(12, weights(12), {"rng": [1, 2], "score": np.float64(0.25)})
    assert path.name == "step_000012.json"
    assert names(run) == ["step_000012.json", "step_000012.safetensors"]
    loaded = run.load_checkpoint(path)
    assert loaded.step == 12
    assert loaded.state == {"rng": [1, 2], "score": 0.25}
    assert len(loaded.meta["sha256"]) == 64
    for name, value in weights(12).items():
        assert torch.equal(loaded.tensors[name], value)
        assert loaded.tensors[name].dtype == value.dtype
    # the tensor file's path works as well as the JSON's, and tensors follow the requested device
    assert run.load_checkpoint(path.with_suffix(".safetensors"), device="cpu").step == 12


def test_tied_and_non_contiguous_tensors_are_saved(run):
    base = torch.arange(12.0).reshape(3, 4)
    run.save_checkpoint(0, {"embed": base, "head": base, "t": base.t()}, {})
    loaded = run.load_checkpoint()
    assert torch.equal(loaded.tensors["head"], base)
    assert torch.equal(loaded.tensors["t"], base.t())


def test_latest_and_pruning_keep_the_newest_three(run):
    assert run.latest_checkpoint() is None
    for step in (1, 2, 5, 9, 10):
        run.save_checkpoint(step, weights(step), {"step": step})
    assert [p.name for p in list_checkpoints(run.checkpoint_dir)] == [
        "step_000005.json",
        "step_000009.json",
        "step_000010.json",
    ]
    assert len(names(run)) == 6
    assert run.latest_checkpoint().name == "step_000010.json"
    run.save_checkpoint(11, weights(11), {}, keep=None)
    assert len(list_checkpoints(run.checkpoint_dir)) == 4


@pytest.mark.parametrize("leftover", ["temp_file", "tensors_without_json", "corrupted_tensors"])
def test_interrupted_save_leaves_previous_checkpoint_loadable(run, leftover):
    run.save_checkpoint(12, weights(12), {"step": 12})
    folder = run.checkpoint_dir
    if leftover == "temp_file":  # killed while writing the tensor file, before the rename
        (folder / ".step_000013.safetensors.tmp-4242").write_bytes(b"half a tens")
    elif leftover == "tensors_without_json":  # killed between the two renames
        run.save_checkpoint(13, weights(13), {"step": 13})
        (folder / "step_000013.json").unlink()
    else:  # the newest checkpoint's tensors were damaged after saving
        run.save_checkpoint(13, weights(13), {"step": 13})
        _flip_a_byte(folder / "step_000013.safetensors")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        latest = run.latest_checkpoint()
    assert latest.name == "step_000012.json"
    assert bool(caught) == (leftover == "corrupted_tensors")
    loaded = run.load_checkpoint(latest)
    assert loaded.state == {"step": 12}
    assert torch.equal(loaded.tensors["lora.A"], weights(12)["lora.A"])

    # the run resumes from 12 and its next save of step 13 replaces the broken leftovers
    run.save_checkpoint(13, weights(13), {"step": 13})
    assert run.load_checkpoint().state == {"step": 13}
    assert not [name for name in names(run) if name.startswith(".")]


def test_checksum_mismatch_is_an_error(run):
    path = run.save_checkpoint(3, weights(3), {})
    _flip_a_byte(path.with_suffix(".safetensors"))
    with pytest.raises(EvoloraError, match=r"step_000003\.safetensors' fails its sha256 checksum"):
        run.load_checkpoint(path)
    with pytest.warns(UserWarning, match="Skipping broken checkpoint"):
        assert run.latest_checkpoint() is None
    with pytest.warns(UserWarning), pytest.raises(EvoloraError, match="no loadable checkpoint"):
        run.load_checkpoint()


def test_broken_json_missing_file_and_bad_arguments_are_one_sentence_errors(run, tmp_path):
    path = run.save_checkpoint(4, weights(4), {})
    with pytest.raises(EvoloraError, match="does not exist"):
        load_checkpoint(tmp_path / "step_000099.json")
    path.with_suffix(".safetensors").unlink()
    with pytest.raises(EvoloraError, match="tensor file cannot be read"):
        load_checkpoint(path)
    path.write_text('{"step": 4}')
    with pytest.raises(EvoloraError, match="lacks a valid 'tensors' entry"):
        load_checkpoint(path)
    with pytest.raises(EvoloraError, match="non-negative integer"):
        run.save_checkpoint(-1, {}, {})
    with pytest.raises(EvoloraError, match="keep must be at least 1"):
        run.save_checkpoint(5, {}, {}, keep=0)
    with pytest.raises(TypeError, match="object is not JSON-serialisable"):
        run.save_checkpoint(5, {}, {"bad": object()})


def test_a_valid_checkpoint_is_never_overwritten(run):
    run.save_checkpoint(7, weights(7), {"first": True})
    with pytest.raises(EvoloraError, match="valid checkpoint for step 7 already exists"):
        run.save_checkpoint(7, weights(8), {"first": False})
    assert run.load_checkpoint().state == {"first": True}


# Saves ever larger checkpoints in a loop until killed; each tensor is filled with its step.
SAVER = textwrap.dedent(
    """
    import sys
    import torch
    from evolora.telemetry import RunDir

    run = RunDir.open(sys.argv[1])
    step = 0
    while True:
        run.save_checkpoint(step, {"w": torch.full((1_000_000,), float(step))}, {"step": step})
        step += 1
    """
)


@pytest.mark.slow
def test_sigkill_during_saves_leaves_a_loadable_latest_checkpoint(run):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", SAVER, str(run.path)], env=env)
    deadline = time.monotonic() + 60
    while len(list_checkpoints(run.checkpoint_dir)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no broken checkpoint is ever visible
        loaded = run.load_checkpoint()
    assert loaded.step >= 2
    assert loaded.state == {"step": loaded.step}
    assert torch.equal(loaded.tensors["w"], torch.full((1_000_000,), float(loaded.step)))


def _flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
