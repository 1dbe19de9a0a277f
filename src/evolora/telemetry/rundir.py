"""A run folder: the one place a run writes everything it decides.

    runs/ecology-20250101-120000/
      config.yaml        the validated config the run started with
      meta.json          evolora version, git commit, seed, start time, machine
      <stream>.jsonl     append-only record streams (episodes, metrics, ...)
      checkpoints/       step_000012.safetensors + step_000012.json (see checkpoint.py)
      run.lock           who is writing the run now (see lock.py)

A new run always gets a new folder; nothing in an existing folder is ever truncated or overwritten,
except config.yaml when a resumed run is extended (`save_config`). A resumed run opens its folder
with `RunDir.open`, takes its lock, and continues from `latest_checkpoint()`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel

from evolora import __version__
from evolora.errors import EvoloraError
from evolora.telemetry.atomic import atomic_write_text
from evolora.telemetry.config_io import config_to_dict, dump_config, validate_config
from evolora.telemetry.jsonl import JsonlStream, read_jsonl
from evolora.telemetry.lock import RunLock
from evolora.telemetry.machine import git_commit, machine_info

if TYPE_CHECKING:
    import torch

    from evolora.telemetry.checkpoint import Checkpoint

Model = TypeVar("Model", bound=BaseModel)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoints"


class RunDir:
    """One run's folder: config, metadata, JSONL streams and checkpoints."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        """Use `RunDir.create` or `RunDir.open`; this only wraps an existing, checked folder."""
        self.path = Path(path)
        self.meta = meta
        self._streams: dict[str, JsonlStream] = {}
        self._lock: RunLock | None = None

    @classmethod
    def create(
        cls,
        root: str | Path,
        config: BaseModel | Mapping[str, Any],
        seed: int | None = None,
        name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> RunDir:
        """Make a new, never-used folder `<root>/<name>-<YYYYmmdd-HHMMSS>[-N]` and record the run.

        `seed` defaults to the config's `seed` entry when it has one; `extra` entries (e.g. the
        host's resolved precision) are added to meta.json.
        """
        name = name or "run"
        if not _NAME.match(name):
            raise EvoloraError(
                f"Run name '{name}' is not usable as a folder name; use letters, digits, '_', "
                "'-' and '.' (starting with a letter or digit)."
            )
        data = config_to_dict(config)
        if seed is None and isinstance(data.get("seed"), int):
            seed = data["seed"]
        started = datetime.now(timezone.utc).astimezone()
        path = _claim_new_folder(Path(root), f"{name}-{started:%Y%m%d-%H%M%S}")
        meta = {
            "name": name,
            "evolora_version": __version__,
            "git_commit": git_commit(),
            "seed": seed,
            "started_at": started.isoformat(timespec="seconds"),
            "argv": list(sys.argv),
            "machine": machine_info(),
            **(extra or {}),
        }
        atomic_write_text(path / CONFIG_FILE, dump_config(data))
        # meta.json last: a folder is a run folder once it exists.
        atomic_write_text(path / META_FILE, json.dumps(meta, indent=1) + "\n")
        return cls(path, meta)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Open an existing run folder (to resume it or read it)."""
        path = Path(path)
        if not path.is_dir():
            raise EvoloraError(f"Run folder '{path}' does not exist.")
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise EvoloraError(
                f"'{path}' is not an evolora run folder: it has no {META_FILE} (run folders are "
                "made by RunDir.create, e.g. through `evolora run`)."
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as problem:
            raise EvoloraError(
                f"'{meta_path}' is not readable JSON; the run folder is damaged."
            ) from problem
        if not isinstance(meta, dict):
            raise EvoloraError(f"'{meta_path}' must hold a JSON object; the run folder is damaged.")
        return cls(path, meta)

    def config(self, model: type[Model] | None = None) -> dict[str, Any] | Model:
        """The run's config.yaml, as a dict or validated into `model`."""
        config_path = self.path / CONFIG_FILE
        try:
            data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as problem:
            raise EvoloraError(f"'{config_path}' cannot be read as YAML.") from problem
        return data if model is None else validate_config(data, model, source=str(config_path))

    def save_config(self, config: BaseModel | Mapping[str, Any]) -> None:
        """Replace config.yaml (a resumed run that changes its length records it here)."""
        atomic_write_text(self.path / CONFIG_FILE, dump_config(config_to_dict(config)))

    def lock(self) -> RunDir:
        """Claim the folder for this process; EvoloraError when another live process holds it."""
        if self._lock is None:
            self._lock = RunLock(self.path)
            self._lock.acquire()
        return self

    def discard(self) -> None:
        """Delete a run folder that failed before its first checkpoint, so no orphan is left."""
        import shutil

        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # -- streams -------------------------------------------------------------------------------

    def stream(self, name: str) -> JsonlStream:
        """The append-only stream `<name>.jsonl` (created on first append)."""
        if name not in self._streams:
            self._streams[name] = JsonlStream(self._stream_path(name))
        return self._streams[name]

    def read_stream(self, name: str) -> list[Any]:
        """Every complete record of a stream (an empty list if it was never written)."""
        path = self._stream_path(name)
        return read_jsonl(path) if path.exists() else []

    def stream_names(self) -> list[str]:
        """Names of the streams present in the folder."""
        return sorted(path.stem for path in self.path.glob("*.jsonl"))

    def _stream_path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise EvoloraError(
                f"Stream name '{name}' is not valid; use letters, digits, '_', '-' and '.'."
            )
        return self.path / f"{name}.jsonl"

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        """The folder holding this run's checkpoints."""
        return self.path / CHECKPOINT_DIR

    def save_checkpoint(
        self,
        step: int,
        tensors: dict[str, torch.Tensor],
        state: dict[str, Any],
        keep: int | None = 3,
    ) -> Path:
        """Save tensors + JSON state for `step` atomically; keep the newest `keep` checkpoints."""
        from evolora.telemetry.checkpoint import save_checkpoint

        return save_checkpoint(self.checkpoint_dir, step, tensors, state, keep=keep)

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint whose checksum verifies (warning about broken newer ones)."""
        from evolora.telemetry.checkpoint import latest_checkpoint

        return latest_checkpoint(self.checkpoint_dir)

    def load_checkpoint(
        self, path: str | Path | None = None, device: str | torch.device | None = None
    ) -> Checkpoint:
        """Load a checkpoint (default: the latest good one); EvoloraError on a checksum mismatch."""
        from evolora.telemetry.checkpoint import load_checkpoint

        if path is None:
            path = self.latest_checkpoint()
            if path is None:
                raise EvoloraError(f"Run folder '{self.path}' has no loadable checkpoint.")
        return load_checkpoint(Path(path), device=device)

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every open stream."""
        for stream in self._streams.values():
            stream.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"RunDir('{self.path}')"


def _claim_new_folder(root: Path, base: str) -> Path:
    """Create and return `root/base` (or `base-2`, `base-3`, ...): the first name not yet taken."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as problem:
        raise EvoloraError(
            f"Cannot create the runs folder '{root}' ({problem.strerror})."
        ) from problem
    for attempt in range(1, 10_000):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()  # atomic: fails if anyone (another process too) made it first
        except FileExistsError:
            continue
        return path
    raise EvoloraError(f"Could not find a free run folder name for '{base}' under '{root}'.")
