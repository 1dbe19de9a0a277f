"""Progress for long loops: a rich bar with a live summary line, or plain lines when not on a TTY.

with Progress(total=200, description="episodes") as progress:
    for episode in range(200):
        ...
        progress.advance(summary={"reward": reward, "alive": alive})
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


def format_summary(summary: str | Mapping[str, Any] | None) -> str:
    """`{"loss": 0.31234, "alive": 12}` -> `"loss=0.3123 alive=12"` (strings pass through)."""
    if summary is None:
        return ""
    if isinstance(summary, str):
        return summary
    parts = []
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


class Progress:
    """A progress display for `total` steps (None when unknown) with a live summary line.

    On a terminal it is a rich progress bar; otherwise (logs, CI, pipes) it prints a plain line
    each time another `percent_step` percent is done or `interval` seconds have passed, and at the
    end.
    """

    def __init__(
        self,
        total: int | None,
        description: str = "working",
        *,
        console: Console | None = None,
        interval: float = 30.0,
        percent_step: int = 10,
    ) -> None:
        self.total = total
        self.description = description
        self.completed = 0
        self.summary = ""
        self.console = console or Console()
        self.interval = interval
        self.percent_step = percent_step
        self._live = self.console.is_terminal
        self._bar: RichProgress | None = None
        self._task: Any = None
        self._started = 0.0
        self._last_line_at = 0.0
        self._last_bucket = 0
        self._printed_at: int | None = None

    def __enter__(self) -> Progress:
        self._started = self._last_line_at = time.monotonic()
        if self._live:
            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[summary]}"),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, summary="")
        return self

    def advance(self, steps: int = 1, summary: str | Mapping[str, Any] | None = None) -> None:
        """Mark `steps` more done and optionally replace the summary line."""
        self.completed += steps
        if summary is not None:
            self.summary = format_summary(summary)
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, summary=self.summary)
        elif self._plain_line_due():
            self._print_line()

    def set_summary(self, summary: str | Mapping[str, Any]) -> None:
        """Replace the summary line without advancing."""
        self.advance(0, summary)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self._printed_at != self.completed:
            self._print_line()

    def _bucket(self) -> int:
        """How many `percent_step` slices of the total are done."""
        if not self.total or self.total <= 0:
            return 0
        return min(self.completed, self.total) * 100 // self.total // self.percent_step

    def _plain_line_due(self) -> bool:
        due_by_time = time.monotonic() - self._last_line_at >= self.interval
        return due_by_time or self._bucket() > self._last_bucket

    def _print_line(self) -> None:
        done = f"{self.completed}"
        if self.total:
            done += f"/{self.total} ({100 * self.completed / self.total:.0f}%)"
        elapsed = time.monotonic() - self._started
        line = f"[{self.description}] {done} {elapsed:.1f}s {self.summary}".rstrip()
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self._last_line_at = time.monotonic()
        self._last_bucket = self._bucket()
        self._printed_at = self.completed
