"""Telemetry: run folders (config, metadata, JSONL streams, checkpoints), configs and progress."""

from __future__ import annotations

from evolora.telemetry.config_io import dump_config, load_config, validate_config
from evolora.telemetry.jsonl import JsonlStream, read_jsonl
from evolora.telemetry.progress import Progress
from evolora.telemetry.rundir import RunDir
from evolora.telemetry.streams import latest_attempt, read_stream

__all__ = [
    "JsonlStream",
    "Progress",
    "RunDir",
    "dump_config",
    "latest_attempt",
    "load_config",
    "read_jsonl",
    "read_stream",
    "validate_config",
]
