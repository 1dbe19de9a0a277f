"""Append-only JSONL streams: one JSON record per line, flushed to the OS after every record.

Durability model: each `append` writes the whole line and flushes Python's buffer, so a record
survives the writing process being killed (even by SIGKILL) as soon as `append` returns. There is
deliberately no `os.fsync` per record: that would cost a disk round trip per line and only protects
against the whole machine losing power, which checkpoints (fsynced) cover. A kill can at worst leave
the final line incomplete; `read_jsonl` skips exactly that line, and reopening the stream for
appending trims it so new records start on a fresh line.

A stream has one writer at a time (the run that owns the folder); any number of readers.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from evolora.errors import EvoloraError


def json_default(value: Any) -> Any:
    """Make numpy/torch scalars and arrays, paths and sets JSON-serialisable."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable: {value!r:.80}")


def encode_record(record: Any) -> bytes:
    """One record as a UTF-8 JSON line (newline included)."""
    text = json.dumps(record, default=json_default, ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


class JsonlStream:
    """An append-only JSONL file; `append` writes one record and flushes it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: BinaryIO | None = None

    def append(self, record: Any) -> None:
        """Write `record` as one JSON line and flush it (visible to readers when this returns)."""
        line = encode_record(record)
        if self._handle is None:
            self._handle = self._open()
        self._handle.write(line)
        self._handle.flush()

    def close(self) -> None:
        """Close the file (appending again reopens it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _open(self) -> BinaryIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _trim_torn_tail(self.path)
        return open(self.path, "ab")


def _trim_torn_tail(path: Path) -> None:
    """Cut an incomplete last line (left by a killed writer) so the next record starts cleanly."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        end = _last_newline_end(handle, size)
        handle.truncate(end)
    warnings.warn(
        f"{path}: dropped an incomplete last line ({size - end} bytes) left by an interrupted "
        "write before appending.",
        stacklevel=4,
    )


def _last_newline_end(handle: BinaryIO, size: int, chunk: int = 1 << 16) -> int:
    """Offset just after the last b'\\n' in the file (0 when there is none)."""
    position = size
    while position > 0:
        start = max(0, position - chunk)
        handle.seek(start)
        found = handle.read(position - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        position = start
    return 0


def iter_jsonl(path: Path) -> Iterator[Any]:
    """Yield the records of a JSONL file, skipping only an incomplete final line.

    A malformed line anywhere else is corruption and raises `EvoloraError` naming file and line.
    """
    path = Path(path)
    if not path.exists():
        raise EvoloraError(f"JSONL file '{path}' does not exist.")
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return  # torn last line: the writer was killed mid-record
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as problem:
                raise EvoloraError(
                    f"{path}: line {number} is not valid JSON ({problem}); the stream is corrupted "
                    "there."
                ) from problem


def read_jsonl(path: Path) -> list[Any]:
    """All complete records of a JSONL file, in order (see `iter_jsonl`)."""
    return list(iter_jsonl(path))
