"""Shared helpers for benchmark scripts: machine description, result writing and kept seeds."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
# Timers a benchmark may measure with: the process's CPU time (waiting for a core of a shared
# machine does not count) or elapsed wall-clock time.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
_HEADER = (
    "# Benchmark results\n\n"
    "The latest table of every benchmark script in `benchmarks/`, with its date and command; "
    "each script rewrites its own section (rules in the shared BENCHMARKS.md).\n"
)


def add_keep_argument(parser) -> None:
    """`--keep DIR` on an argparse parser: the folder `kept_seed` saves each finished seed in."""
    parser.add_argument("--keep", type=Path, default=None,
                        help="folder keeping each finished seed; a rerun skips the seeds in it")


def add_tag_argument(parser) -> None:
    """`--tag NAME` on an argparse parser: a suffix of the result's name (see `tagged`)."""
    parser.add_argument("--tag", default="", help="suffix of the result's name")


def shared_machine_note(when_written: bool = False) -> str:
    """The sentence that says how loaded the shared machine was (its 1-minute load average now)."""
    when = " when this table was written" if when_written else ""
    return (f"Measured on a machine shared with other work (1-minute load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores{when}).")


def tagged(name: str, tag: str) -> str:
    """`name_tag`, or `name` without a tag: the result name of a tagged run."""
    return f"{name}_{tag}" if tag else name


def kept_seed(keep: Path | None, seed: int, run: Callable[[], dict]) -> dict:
    """Seed `seed`'s result saved in `keep` by an earlier run, or else `run()`, then saved there
    (nothing is saved when `keep` is None)."""
    kept = keep / f"seed{seed}.json" if keep is not None else None
    if kept is not None and kept.is_file():
        return json.loads(kept.read_text(encoding="utf-8"))
    result = run()
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(result), encoding="utf-8")
    return result


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, Python, platform, and torch version and threads (when torch imports)."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import torch

        info["torch_version"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch_version"] = None
        info["torch_threads"] = None
    return info


def mean_std(values, digits: int = 3, signed: bool = False) -> str:
    """'mean ± std' of the values (population std), e.g. '0.275 ± 0.014'."""
    values = np.asarray(values, dtype=float)
    sign = "+" if signed else ""
    return f"{values.mean():{sign}.{digits}f} ± {values.std():.{digits}f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_result(name: str, figures: dict[str, Any], table_text: str) -> Path:
    """Write `results/NAME.json` (machine, date, command, figures, table) and replace the
    benchmark's section in RESULTS.md (appending it the first time). Returns the JSON path."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    command = "python " + " ".join([os.path.relpath(sys.argv[0], BENCH_DIR.parent), *sys.argv[1:]])
    record = {
        "name": name,
        "date": now.isoformat(),
        "command": command,
        "machine": machine_info(),
        "figures": figures,
        "table": table_text,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    machine = record["machine"]
    section = (
        f"## {name}\n\n"
        f"{now.date()} · `{command}` · {machine['nproc']} cores ({machine['cpu_model']}), "
        f"torch {machine['torch_version']}\n\n{table_text.strip()}\n"
    )
    _replace_section(name, section)
    return out


def _replace_section(name: str, section: str) -> None:
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else _HEADER
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS_MD.write_text(text, encoding="utf-8")
