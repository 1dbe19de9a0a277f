"""Checkpoints: tensors in safetensors plus a JSON sidecar holding the state and a sha256 checksum.

Layout inside a run folder's `checkpoints/`:

    step_000012.safetensors   the tensors (written to a temp file, fsynced, renamed)
    step_000012.json          step, state, tensor file name, sha256, size (written the same way)

The JSON is written last, so a checkpoint exists only once its JSON does; a kill at any moment
leaves the previous checkpoint intact. Loading re-hashes the tensor file and refuses a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from evolora import __version__
from evolora.errors import EvoloraError
from evolora.telemetry.atomic import atomic_write_text, commit_temp, temp_path_for
from evolora.telemetry.jsonl import json_default

_STEP_FILE = re.compile(r"^\.?step_(\d+)\.(?:safetensors|json)")


@dataclass
class Checkpoint:
    """A loaded checkpoint: its step, tensors (on the requested device) and JSON state."""

    step: int
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(directory: Path, step: int) -> Path:
    """The JSON path that names the checkpoint of `step`."""
    return Path(directory) / f"step_{step:06d}.json"


def save_checkpoint(
    directory: Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    keep: int | None = 3,
) -> Path:
    """Write a checkpoint atomically, prune all but the newest `keep`, and return its JSON path.

    `state` must be JSON-serialisable (numpy/torch scalars are converted).
    Refuses to replace a valid checkpoint of the same step; a broken one is replaced.
    """
    if not isinstance(step, int) or step < 0:
        raise EvoloraError(f"A checkpoint step must be a non-negative integer, got {step!r}.")
    if keep is not None and keep < 1:
        raise EvoloraError(f"keep must be at least 1 checkpoint (or None for all), got {keep}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = checkpoint_path(directory, step)
    if json_path.exists() and _problem(json_path) is None:
        raise EvoloraError(
            f"A valid checkpoint for step {step} already exists at '{json_path}'; checkpoints are "
            "never overwritten (save a later step or start a new run)."
        )
    # Normalise (and reject unserialisable) state before touching the disk.
    state = json.loads(json.dumps(state, default=json_default))

    tensor_path = json_path.with_suffix(".safetensors")
    temp = temp_path_for(tensor_path)
    try:
        save_file(_standalone(tensors), str(temp))
        commit_temp(temp, tensor_path)
    finally:
        temp.unlink(missing_ok=True)

    record = {
        "step": step,
        "tensors": tensor_path.name,
        "sha256": _sha256(tensor_path),
        "bytes": tensor_path.stat().st_size,
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "evolora_version": __version__,
        "state": state,
    }
    atomic_write_text(json_path, json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    if keep is not None:
        _prune(directory, newest=step, keep=keep)
    return json_path


def latest_checkpoint(directory: Path) -> Path | None:
    """The JSON path of the newest checkpoint whose checksum verifies (broken ones are skipped)."""
    for json_path in reversed(list_checkpoints(directory)):
        problem = _problem(json_path)
        if problem is None:
            return json_path
        warnings.warn(f"Skipping broken checkpoint: {problem}", stacklevel=2)
    return None


def list_checkpoints(directory: Path) -> list[Path]:
    """JSON paths of all complete (not necessarily valid) checkpoints, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob("step_*.json") if _step_of(p) is not None]
    return sorted(found, key=lambda p: _step_of(p) or 0)


def load_checkpoint(path: Path, device: str | torch.device | None = None) -> Checkpoint:
    """Load a checkpoint (its JSON or tensor file path), verifying the checksum first.

    Tensors are moved to `device` when given (use the model's device); else they stay on the CPU.
    """
    json_path = Path(path).with_suffix(".json")
    meta = _read_meta(json_path)
    problem = _problem(json_path, meta)
    if problem is not None:
        raise EvoloraError(f"Checkpoint {problem}; resume from an earlier checkpoint.")
    tensor_path = json_path.with_name(meta["tensors"])
    try:
        tensors = load_file(tensor_path, device=str(device) if device is not None else "cpu")
    except SafetensorError as problem:
        raise EvoloraError(
            f"Checkpoint '{tensor_path}' is not a valid safetensors file."
        ) from problem
    state = meta.pop("state")
    return Checkpoint(step=meta["step"], tensors=tensors, state=state, path=json_path, meta=meta)


def _read_meta(json_path: Path) -> dict[str, Any]:
    if not json_path.is_file():
        raise EvoloraError(f"Checkpoint '{json_path}' does not exist.")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as problem:
        raise EvoloraError(f"Checkpoint '{json_path}' is not readable JSON.") from problem
    required = {"step": int, "tensors": str, "sha256": str, "state": dict}
    for key, kind in required.items():
        if not isinstance(meta, dict) or not isinstance(meta.get(key), kind):
            raise EvoloraError(
                f"Checkpoint '{json_path}' lacks a valid '{key}' entry; it was not written by "
                "evolora or was edited."
            )
    if Path(meta["tensors"]).name != meta["tensors"]:
        raise EvoloraError(f"Checkpoint '{json_path}' names a tensor file outside its folder.")
    return meta


def _problem(json_path: Path, meta: dict[str, Any] | None = None) -> str | None:
    """Why the checkpoint at `json_path` cannot be loaded, or None when its checksum verifies."""
    try:
        meta = meta if meta is not None else _read_meta(json_path)
    except EvoloraError as problem:
        return str(problem).removeprefix("Checkpoint ").rstrip(".")
    tensor_path = json_path.with_name(meta["tensors"])
    try:
        digest = _sha256(tensor_path)
    except OSError as problem:
        return f"'{json_path}' is broken: its tensor file cannot be read ({problem.strerror})"
    if digest != meta["sha256"]:
        return (
            f"'{tensor_path}' fails its sha256 checksum (the file is corrupted or was changed "
            "after saving)"
        )
    return None


def _prune(directory: Path, newest: int, keep: int) -> None:
    """Delete checkpoints older than the newest `keep`, plus leftovers of interrupted saves."""
    complete = [p for p in list_checkpoints(directory) if _step_of(p) <= newest]
    kept_steps = {_step_of(p) for p in complete[-keep:]}
    doomed = [
        path
        for path in directory.iterdir()
        if (step := _step_of(path)) is not None
        and step <= newest
        and (step not in kept_steps or path.name.startswith("."))
    ]
    # JSON files first, so a checkpoint never "exists" after its tensor file is gone.
    for path in sorted(doomed, key=lambda p: p.suffix != ".json"):
        path.unlink(missing_ok=True)


def _standalone(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous tensors, cloning any that share storage (tied weights, views)."""
    seen: set[int] = set()
    result = {}
    for name, value in tensors.items():
        value = value.detach()
        storage = value.untyped_storage().data_ptr()
        if storage in seen:
            value = value.clone()
        seen.add(storage)
        result[name] = value.contiguous()
    return result


def _step_of(path: Path) -> int | None:
    match = _STEP_FILE.match(path.name)
    return int(match.group(1)) if match else None


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
