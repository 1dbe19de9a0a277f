"""Crash-safe file writes: write a temp file beside the target, fsync it, then rename over it.

A reader (or a resumed run) therefore sees either the old file or the complete new one, never a
half-written file, even if the process is killed or the machine loses power mid-write.
"""

from __future__ import annotations

import os
from pathlib import Path


def temp_path_for(path: Path) -> Path:
    """The hidden, process-unique temp path used while `path` is being written."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def fsync_file(path: Path) -> None:
    """Force a written file's bytes to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit_temp(temp: Path, path: Path) -> None:
    """Fsync the finished temp file and atomically move it to `path`."""
    fsync_file(temp)
    os.replace(temp, path)
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file, fsync, rename)."""
    path = Path(path)
    temp = temp_path_for(path)
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        commit_temp(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output_file(path: Path, force: bool) -> None:
    """Raise an EvoloraError when `path` cannot be written as a file, or exists and not `force`."""
    from evolora.errors import EvoloraError

    path = Path(path)
    if path.is_dir():
        raise EvoloraError(f"Output path '{path}' is a folder; give a file name.")
    if path.exists() and not force:
        raise EvoloraError(
            f"Output file '{path}' already exists; choose a new name or pass --force to replace it."
        )
    if not path.parent.is_dir():
        raise EvoloraError(f"Output folder '{path.parent}' does not exist.")


def user_file_mode(path: Path) -> None:
    """Give a written file the permissions the user's umask allows (temp files start at 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
