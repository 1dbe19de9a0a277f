"""Progress: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import io

from rich.console import Console

from evolora.telemetry import Progress
from evolora.telemetry.progress import format_summary


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=120), buffer


def test_plain_lines_every_tenth_and_at_the_end():
    out, buffer = console(terminal=False)
    with Progress(total=25, description="episodes", console=out, interval=1e9) as progress:
        for step in range(25):
            progress.advance(summary={"loss": 1 / (step + 1), "alive": 25 - step})
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 10  # 10%, 20%, ..., 100%
    assert lines[0].startswith("[episodes] 3/25 (12%) ")
    assert lines[0].endswith("loss=0.3333 alive=23")
    assert lines[-1].startswith("[episodes] 25/25 (100%) ")
    assert "\x1b[" not in buffer.getvalue()  # no terminal escape codes in logs


def test_plain_unknown_total_prints_a_final_line():
    out, buffer = console(terminal=False)
    with Progress(total=None, description="search", console=out, interval=1e9) as progress:
        progress.advance(3)
        progress.set_summary("best=0.9")
    (line,) = buffer.getvalue().splitlines()
    assert line.startswith("[search] 3 ")
    assert line.endswith("s best=0.9")


def test_terminal_shows_a_live_bar_with_the_summary():
    out, buffer = console(terminal=True)
    with Progress(total=4, description="train", console=out) as progress:
        for _ in range(4):
            progress.advance(summary="acc=0.75")
    text = buffer.getvalue()
    assert "train" in text and "4/4" in text and "acc=0.75" in text


def test_format_summary():
    assert format_summary({"loss": 0.123456, "n": 3, "tag": "x"}) == "loss=0.1235 n=3 tag=x"
    assert format_summary("as is") == "as is"
    assert format_summary(None) == ""
