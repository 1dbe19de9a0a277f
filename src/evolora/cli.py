"""The `evolora` command line: one typer app, one sub-command group per subsystem.

Heavy imports (torch, transformers) happen inside commands so that `evolora --help` stays fast.
Every `EvoloraError` becomes one red sentence and exit code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys

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


def _placeholder_group(name: str, what: str, issue: str) -> typer.Typer:
    """A sub-command group whose commands arrive with a later issue; its help says so."""
    group = typer.Typer(
        name=name, help=f"{what} (not built yet: arrives with {issue}).", no_args_is_help=True
    )
    return group


def _register_groups() -> None:
    from evolora.ecology.commands import export_command, report_command, run_command

    app.command("run")(run_command)
    app.command("report")(report_command)
    app.command("export")(export_command)
    from evolora.tasks.commands import tasks_app

    app.add_typer(tasks_app, name="tasks")
    from evolora.hosts.cli import evaluate_command, host_app

    app.add_typer(host_app, name="host")
    app.command("evaluate")(evaluate_command)
    from evolora.economy.commands import economy_app

    app.add_typer(economy_app, name="economy")
    for name, what, issue in [
        ("swarm", "Hierarchical swarm hyperparameter search", "the swarm issue"),
        ("braid", "Fuse several language models and learn how", "the braid issue"),
        ("reso", "The resonant transformer", "the reso issue"),
    ]:
        app.add_typer(_placeholder_group(name, what, issue), name=name)


_register_groups()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn user errors into one red line with exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
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


def _one_line(message: str) -> str:
    return " ".join(message.split())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
