"""JSONL streams: complete records survive a SIGKILLed writer; only a torn last line is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from evolora.errors import EvoloraError
from evolora.telemetry import RunDir, read_jsonl

# Appends records numbered from where the stream stops until it is killed; every tenth record is
# large, so that the kill can also land inside the kernel's write of a single record.
WRITER = textwrap.dedent(
    """
    import sys
    from evolora.telemetry import RunDir

    run = RunDir.open(sys.argv[1])
    start = len(run.read_stream("episodes"))
    stream = run.stream("episodes")
    i = start
    while True:
        stream.append({"i": i, "pad": "x" * (8_000_000 if i % 10 == 9 else i % 100)})
        i += 1
    """
)


def expected_record(i: int) -> dict:
    return {"i": i, "pad": "x" * (8_000_000 if i % 10 == 9 else i % 100)}


@pytest.fixture
def run(tmp_path):
    with RunDir.create(tmp_path, {"seed": 0}, name="jsonl") as created:
        yield created


def test_append_and_read_back_in_order(run):
    stream = run.stream("metrics")
    assert run.stream("metrics") is stream
    stream.append({"step": 0, "loss": np.float32(0.5), "w": torch.tensor([1.0, 2.0])})
    stream.append({"step": 1, "path": run.path / "x", "ids": {3, 1}, "text": "héllo"})
    assert run.read_stream("metrics") == [
        {"step": 0, "loss": 0.5, "w": [1.0, 2.0]},
        {"step": 1, "path": str(run.path / "x"), "ids": [1, 3], "text": "héllo"},
    ]
    assert run.stream_names() == ["metrics"]
    assert run.read_stream("never_written") == []


def test_each_record_is_visible_on_disk_as_soon_as_append_returns(run):
    stream = run.stream("episodes")
    for i in range(3):
        stream.append({"i": i})
        # a separate reader (not the writer's buffer) already sees it
        assert read_jsonl(run.path / "episodes.jsonl")[-1] == {"i": i}


@pytest.mark.slow
def test_records_survive_sigkill_mid_append(run):
    path = run.path / "episodes.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    total = 0
    for _round in range(3):  # kill, resume, kill again: the stream stays whole across restarts
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(run.path)], env=env)
        _wait_for_lines(path, total + 12)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL

        raw = path.read_bytes()
        records = run.read_stream("episodes")
        # every complete line came back, numbered without a gap, intact...
        assert len(records) == raw.count(b"\n") > total
        assert records == [expected_record(i) for i in range(len(records))]
        # ...and anything after the last newline is a prefix of the next record, cut by the kill
        tail = raw[raw.rfind(b"\n") + 1 :]
        next_line = json.dumps(expected_record(len(records)), separators=(",", ":")).encode()
        assert next_line.startswith(tail)
        total = len(records)


def test_torn_last_line_is_skipped_and_trimmed_before_appending(run):
    stream = run.stream("episodes")
    for i in range(3):
        stream.append({"i": i})
    stream.close()
    path = run.path / "episodes.jsonl"
    with open(path, "ab") as handle:
        handle.write(b'{"i": 3, "pa')  # a writer killed mid-record
    assert run.read_stream("episodes") == [{"i": 0}, {"i": 1}, {"i": 2}]

    with pytest.warns(UserWarning, match="dropped an incomplete last line"):
        run.stream("episodes").append({"i": 3})
    assert run.read_stream("episodes") == [{"i": i} for i in range(4)]


def test_malformed_middle_line_names_file_and_line(run):
    path = run.path / "episodes.jsonl"
    path.write_bytes(b'{"i": 0}\n{"i": 1\n{"i": 2}\n')
    with pytest.raises(EvoloraError, match=r"episodes\.jsonl: line 2 is not valid JSON"):
        run.read_stream("episodes")


def test_bad_stream_name_is_rejected(run):
    with pytest.raises(EvoloraError, match=r"Stream name '\.\./escape' is not valid"):
        run.stream("../escape")


def test_reading_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(EvoloraError, match="does not exist"):
        read_jsonl(tmp_path / "nope.jsonl")


def _wait_for_lines(path: Path, lines: int, timeout: float = 60.0) -> None:
    """Poll until the file holds about `lines` newlines, reading only the bytes added since."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        time.sleep(0.005)
    raw = path.read_bytes()
    offset = raw.rfind(b"\n") + 1  # the writer trims anything after this before appending
    seen = raw[:offset].count(b"\n")
    with open(path, "rb") as handle:
        while seen < lines and time.monotonic() < deadline:
            handle.seek(offset)
            chunk = handle.read()
            offset += len(chunk)
            seen += chunk.count(b"\n")
            time.sleep(0.005)
