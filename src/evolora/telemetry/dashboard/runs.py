"""What the dashboard may read: run folders under one root, and nothing outside it.

Every path a request names is relative to the root, made only of plain names (no '..', no
absolute paths, no backslashes), and must still lie inside the root once symlinks are resolved.
Readers tolerate what a live run leaves behind: a torn last line, a folder deleted mid-read.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from evolora.telemetry.lock import lock_holder
from evolora.telemetry.streams import latest_attempt

META_FILE, CONFIG_FILE = "meta.json", "config.yaml"
MAX_RECORDS = 5000  # most records one request may ask for
MAX_STREAM_BYTES = 256 * 2**20  # a larger stream is not read whole by the dashboard
MAX_DEPTH = 3  # run folders are looked for this many levels below the root
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Refused(Exception):
    """A request the dashboard will not serve; `status` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def resolve_run(root: Path, relative: str | None) -> Path:
    """The run folder `relative` names under `root` (both resolved); Refused otherwise."""
    if not relative:
        raise Refused(400, "name a run folder with ?run=PATH (relative to the runs folder)")
    if "\x00" in relative or "\\" in relative or relative.startswith("/") or ":" in relative:
        raise Refused(400, "run paths are relative to the runs folder, with '/' between names")
    parts = relative.split("/")
    if any(not _NAME.match(part) for part in parts):
        raise Refused(400, "run paths are made of plain folder names (no '.', '..' or empty parts)")
    folder = root.joinpath(*parts).resolve()
    if not folder.is_relative_to(root):
        raise Refused(403, "that path leads outside the runs folder")
    if not (folder / META_FILE).is_file():
        raise Refused(404, f"no run folder '{relative}' (it may have been deleted)")
    return folder


def stream_path(root: Path, folder: Path, name: str | None) -> Path:
    """The JSONL file of stream `name` in a run folder; Refused when absent or leading out."""
    if not name or not _NAME.match(name):
        raise Refused(400, "stream names are plain names such as gen_summaries")
    path = (folder / f"{name}.jsonl").resolve()
    if not path.is_relative_to(root):
        raise Refused(403, "that stream leads outside the runs folder")
    if not path.is_file():
        raise Refused(404, f"the run has no stream '{name}'")
    return path


def find_runs(root: Path) -> list[Path]:
    """Run folders (holding meta.json) under `root`, at most MAX_DEPTH levels down, in order."""
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            resolved = child.resolve()
            if not resolved.is_relative_to(root):
                continue  # a symlink out of the runs folder
            if (child / META_FILE).is_file():
                found.append(child)
            elif depth < MAX_DEPTH:
                walk(child, depth + 1)

    walk(root, 1)
    return found


def read_records(path: Path, start: int = 0, limit: int | None = None) -> list[Any]:
    """Records `start` .. `start + limit` of a JSONL file; a torn last line and unreadable lines
    are skipped, a file that vanished reads as empty."""
    records: list[Any] = []
    try:
        if path.stat().st_size > MAX_STREAM_BYTES and limit is None:
            raise Refused(413, f"stream {path.name} is too large to chart whole; ask for a range")
        with open(path, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a torn last line: its writer is mid-record or was killed
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if start > 0:
                    start -= 1
                    continue
                records.append(record)
                if limit is not None and len(records) >= limit:
                    break
    except FileNotFoundError:
        return []
    return records


def read_streams(folder: Path) -> dict[str, list[Any]]:
    """Every stream of a run folder, each generation once (its latest attempt)."""
    raw = {p.stem: read_records(p) for p in sorted(folder.glob("*.jsonl")) if p.is_file()}
    return {
        name: latest_attempt(records, [other for key, other in raw.items() if key != name])
        for name, records in raw.items()
    }


def read_meta(folder: Path) -> dict[str, Any]:
    """meta.json as a dict (empty when unreadable)."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def read_config(folder: Path) -> tuple[str, dict[str, Any]]:
    """config.yaml as text and as data (empty when unreadable)."""
    try:
        text = (folder / CONFIG_FILE).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError):
        return "", {}
    return text, data if isinstance(data, dict) else {}


def run_status(folder: Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """running (a live process holds the lock), finished (its last record reached the configured
    length), crashed (the lock names a process that is gone) or stopped; with the progress."""
    if config is None:
        config = read_config(folder)[1]
    lengths = [config[k] for k in ("generations", "steps") if isinstance(config.get(k), int)]
    total = lengths[0] if lengths else None
    done = _last_position(folder)
    holder = lock_holder(folder)
    if holder is not None and holder["alive"] is not False:
        state = "running"
    elif total is not None and done is not None and done >= total:
        state = "finished"
    elif holder is not None:
        state = "crashed"
    else:
        state = "stopped"
    return {"status": state, "done": done, "total": total}


def _last_position(folder: Path) -> int | None:
    """The generation (or step) of the last complete record of the run's main stream."""
    for name in ("gen_summaries", "metrics", "steps"):
        records = read_records(folder / f"{name}.jsonl")
        for record in reversed(records):
            if isinstance(record, dict):
                for key in ("generation", "step"):
                    if isinstance(record.get(key), int):
                        return record[key]
    return None


def version(folder: Path) -> str:
    """A token that changes whenever any file the dashboard shows for this run changes."""
    digest = hashlib.sha256()
    for path in sorted([*folder.glob("*.jsonl"), folder / CONFIG_FILE, folder / "run.lock"]):
        try:
            info = path.stat()
        except OSError:
            continue
        digest.update(f"{path.name}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]
