"""The `evolora` command line: one typer app, one sub-command group per subsystem.

Heavy imports (torch, transformers) happen inside commands so that `evolora --help` stays fast.
Every `EvoloraError` becomes one red sentence and exit code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys
import warnings

import typer
from rich.console import Console

from evolora import __version__
from evolora.errors import EvoloraError

try:  # recent typer vendors its own copy of click
    from typer._click import exceptions as cli_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as cli_errors

err_console = Console(stderr=True)

app = typer.Typer(
    name="evolora",
    help="Adapt and compose small language models with populations of agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _hide_flag_types() -> None:
    """Show on/off flags in help as `--plots`, not `--plots <bool>` (typer >= 0.25 prints a
    type after every option, though a flag takes no value)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - typer without its own option class
        return
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "hides_flags", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.hides_flags = True
    TyperOption.display_type_rich = display_type_rich


_hide_flag_types()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"evolora {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Adapt and compose small language models with populations of agents."""


def _register_groups() -> None:
    from evolora.ecology.commands import export_command, report_command, run_command

    app.command("run")(run_command)
    app.command("report")(report_command)
    app.command("export")(export_command)
    from evolora.ecology.genes_commands import genes_app

    app.add_typer(genes_app, name="genes")
    from evolora.tasks.commands import tasks_app

    app.add_typer(tasks_app, name="tasks")
    from evolora.hosts.cli import evaluate_command, host_app

    app.add_typer(host_app, name="host")
    app.command("evaluate")(evaluate_command)
    from evolora.telemetry.dashboard.commands import dashboard_command

    app.command("dashboard")(dashboard_command)
    from evolora.economy.commands import economy_app

    app.add_typer(economy_app, name="economy")
    from evolora.swarm.commands import swarm_app

    app.add_typer(swarm_app, name="swarm")
    from evolora.braid.commands import braid_app

    app.add_typer(braid_app, name="braid")
    from evolora.reso.commands import reso_app

    app.add_typer(reso_app, name="reso")


_register_groups()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn user errors into one red line with exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    shown = warnings.showwarning
    if not debug:
        warnings.showwarning = _show_warning
    try:
        return _run(args, debug)
    finally:
        warnings.showwarning = shown


def _run(args: list[str], debug: bool) -> int:
    try:
        # Without standalone mode click returns (not raises) the code of a `typer.Exit(code)`.
        code = app(args=args, prog_name="evolora", standalone_mode=False)
    except typer.Exit as stop:
        return stop.exit_code
    except typer.Abort:
        err_console.print("[red]Aborted.[/red]")
        return 130
    except cli_errors.NoArgsIsHelpError as problem:
        typer.echo(problem.format_message())
        return 0
    except cli_errors.ClickException as problem:
        if debug:
            raise
        err_console.print(f"[red]{_one_line(problem.format_message())}[/red]", soft_wrap=True)
        return 2
    except EvoloraError as problem:
        if debug:
            raise
        err_console.print(f"[red]{_one_line(str(problem))}[/red]", highlight=False, soft_wrap=True)
        return 2
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one yellow line without the internal file and line it came from."""
    err_console.print(
        f"[yellow]warning: {_one_line(str(message))}[/yellow]", highlight=False, soft_wrap=True
    )


def _one_line(message: str) -> str:
    return " ".join(message.split())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
