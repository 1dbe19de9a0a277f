"""The `evolora` command line: help lists the groups, errors are one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from evolora import __version__
from evolora.cli import app, main
from evolora.errors import EvoloraError

GROUPS = ["run", "tasks", "host", "report", "swarm", "economy", "braid", "reso"]


@pytest.fixture
def failing_command():
    """A temporary `evolora boom` command that raises a user error."""

    def boom() -> None:
        raise EvoloraError("Config file 'x.yaml' does not exist.")

    app.command("boom")(boom)
    yield
    app.registered_commands = [c for c in app.registered_commands if c.name != "boom"]


def test_help_lists_every_group(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for group in GROUPS:
        assert f" {group} " in out, group


def test_no_arguments_shows_help(capsys):
    assert main([]) == 0
    assert "Usage" in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"evolora {__version__}"


@pytest.mark.parametrize(
    "argv", [["no-such-command"], ["--no-such-option"], ["tasks", "no-such-verb"]]
)
def test_bad_command_exits_2_with_one_line(capsys, argv):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def test_user_error_is_one_line_and_debug_shows_the_traceback(capsys, failing_command):
    assert main(["boom"]) == 2
    assert capsys.readouterr().err == "Config file 'x.yaml' does not exist.\n"
    with pytest.raises(EvoloraError):
        main(["--debug", "boom"])


def test_installed_console_script(tmp_path):
    script = Path(sys.executable).with_name("evolora")
    command = [str(script)] if script.exists() else [sys.executable, "-c", _ENTRY]
    shown = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert shown.returncode == 0
    assert all(group in shown.stdout for group in GROUPS)
    bad = subprocess.run(
        [*command, "frobnicate"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["No such command 'frobnicate'."]


_ENTRY = "from evolora.cli import entry; entry()"


def test_typer_exit_codes_pass_through():
    @app.command("stop")
    def stop() -> None:
        raise typer.Exit(3)

    try:
        assert main(["stop"]) == 3
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "stop"]


def test_flags_show_in_help_without_a_type(capsys):
    assert main(["report", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--plots" in out and "<bool>" not in out


def test_a_warning_reaches_the_user_as_one_line_without_internal_paths(capsys):
    import warnings

    def warns() -> None:
        warnings.warn("3 prompts longer than 64 tokens were truncated.", UserWarning, stacklevel=1)

    app.command("warns")(warns)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            assert main(["warns"]) == 0
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "warns"]
    err = capsys.readouterr().err.strip()
    assert err == "warning: 3 prompts longer than 64 tokens were truncated."
