"""`evolora dashboard [RUNS_DIR] [--port 8765]`: serve the dashboard until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from evolora.errors import EvoloraError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def dashboard_command(
    runs: Path = typer.Argument(Path("runs"), help="The folder holding run folders."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port to listen on."),
    bind: str = typer.Option(
        "127.0.0.1",
        "--bind",
        help="Address to listen on; the default serves this machine only (the dashboard has no "
        "login, so only bind another address on a network you trust).",
    ),
) -> None:
    """Watch run folders live in the browser: status, charts that grow, side-by-side runs."""
    import uvicorn

    from evolora.telemetry.dashboard.app import create_app

    if not runs.is_dir():
        raise EvoloraError(
            f"Runs folder '{runs}' does not exist; give the folder that holds run folders."
        )
    console = Console()
    hosts = ["*"] if bind not in LOOPBACK else ["127.0.0.1", "localhost", "[::1]"]
    app = create_app(runs, allowed_hosts=hosts)
    shown = f"[{bind}]" if ":" in bind else bind
    console.print(
        f"Dashboard of [bold]{runs.resolve()}[/bold] at http://{shown}:{port} (Ctrl-C stops it).",
        highlight=False,
    )
    if bind not in LOOPBACK:
        console.print(f"[yellow]Listening on {bind}: anyone who can reach it can read these runs.")
    uvicorn.run(app, host=bind, port=port, log_level="warning")
