"""One writer per run folder: an advisory `flock` on RUN/run.lock, which also says who holds it.

The lock file stays in the folder; while a process holds the lock it holds that process's id,
host and start time as JSON, and it is emptied on release. The kernel drops the lock when the
holder dies (even by SIGKILL), so a killed run never leaves a folder locked; a reader that finds
a pid in a file whose process is gone knows the run stopped without releasing it.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evolora.errors import EvoloraError

LOCK_FILE = "run.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: runs are not locked there
    fcntl = None


class RunLock:
    """The exclusive lock of one run folder, held by this process from `acquire` to `release`."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and record this process in the lock file; EvoloraError if it is held."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                holder = lock_holder(self.path.parent) or {}
                raise EvoloraError(
                    f"Run folder '{self.path.parent}' is in use by process "
                    f"{holder.get('pid', '?')} on {holder.get('host', '?')}; wait for it to finish "
                    "or stop it before writing to this run."
                ) from None
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
        self._fd = fd

    def release(self) -> None:
        """Empty the lock file and let the lock go."""
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None


def lock_holder(folder: Path) -> dict[str, Any] | None:
    """Who the lock file of `folder` names (pid, host, since, alive), or None when it is free.

    `alive` is True when the holder runs on this host and its process exists; it is None for a
    holder on another host, which this machine cannot check.
    """
    try:
        text = (Path(folder) / LOCK_FILE).read_text(encoding="utf-8")
        holder = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int):
        return None
    holder["alive"] = (
        _process_exists(holder["pid"]) if holder.get("host") == socket.gethostname() else None
    )
    return holder


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
