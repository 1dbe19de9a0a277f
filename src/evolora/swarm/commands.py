"""`evolora swarm run` (a live line per batch: trials, best, teams, diversity) and `report`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from evolora.errors import EvoloraError

swarm_app = typer.Typer(
    name="swarm", help="Hierarchical swarm hyperparameter search.", no_args_is_help=True
)


@swarm_app.command("run")
def run_command(
    objective: str | None = typer.Option(
        None,
        "--objective",
        help="bbob:FID:DIM[:INST], sklearn:MODEL:DATASET, lora-sft[:GRID] "
        "or module:function (overrides the config's).",
    ),
    trials: int | None = typer.Option(None, "--trials", "-n", min=1, help="Trials to run."),
    config: Path | None = typer.Option(None, "--config", "-c", help="A YAML run config."),
    output: Path = typer.Option(Path("runs"), "--output", "-o", help="Where run folders go."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue this run folder."),
    seed: int | None = typer.Option(None, "--seed", help="Override the swarm's seed."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Trials run at once."),
    executor: str | None = typer.Option(None, "--executor", help="local, process or ray."),
) -> None:
    """Search an objective's hyperparameters with the swarm; writes a run folder."""
    from evolora.swarm.config import RunConfig
    from evolora.swarm.runner import run
    from evolora.telemetry import Progress, RunDir
    from evolora.telemetry.config_io import load_config, validate_config

    console = Console()
    if resume is not None:
        if objective is not None or seed is not None:
            raise EvoloraError(
                "--objective and --seed apply to new runs; a resumed run keeps its own."
            )
        rundir = RunDir.open(resume)
        cfg = rundir.config(RunConfig)
        if trials is not None:
            cfg = cfg.model_copy(update={"trials": trials})
        console.print(f"Resuming [bold]{rundir.path}[/bold].")
    else:
        data = (load_config(config, RunConfig) if config else RunConfig()).model_dump()
        for key, value in {
            "objective": objective,
            "trials": trials,
            "workers": workers,
            "executor": executor,
        }.items():
            if value is not None:
                data[key] = value
        if seed is not None:
            data["swarm"]["seed"] = seed
        if data["swarm"].get("horizon") is None:  # pinned, so a resume with more trials replays
            data["swarm"]["horizon"] = data["trials"]
        cfg = validate_config(data, RunConfig, source="the command line")
        from evolora.swarm.runner import build

        build(cfg)  # a bad objective or space stops here, before a folder is made
        rundir = RunDir.create(output, cfg, seed=cfg.swarm.seed, name="swarm")
        console.print(f"Writing the run to [bold]{rundir.path}[/bold].")
    with Progress(cfg.trials, "trials", console=console) as progress:

        def show(swarm) -> None:
            status = swarm.status()
            progress.advance(
                len(swarm.trials) - progress.completed,
                summary={
                    "best": status["best"],
                    "teams": status["swarm/teams"],
                    "diversity": status["swarm/diversity"],
                },
            )

        swarm = run(cfg, rundir, resume=resume is not None, on_batch=show)
    print_teams(console, swarm)
    best = swarm.best_trial
    console.print(f"Best value {best.value:.6g} at trial {best.number}: {best.params}")
    console.print(
        f"Run folder: [bold]{rundir.path}[/bold]  —  report: evolora swarm report "
        f"{rundir.path} --html"
    )


def print_teams(console: Console, swarm) -> None:
    """A table of the teams alive at the end."""
    from rich.table import Table

    table = Table(title="teams")
    for column in ("team", "parent", "best", "evals", "strategies"):
        table.add_column(column)
    for team in swarm.teams:
        summary = team.summary()
        table.add_row(
            str(summary["team"]),
            str(summary["parent"]),
            f"{summary['best']:.4g}" if summary["best"] is not None else "—",
            str(summary["evals"]),
            ", ".join(a["strategy"] for a in summary["agents"]),
        )
    console.print(table)


@swarm_app.command("report")
def report_command(
    run: Path = typer.Argument(..., help="A run folder written by `evolora swarm run`."),
    plots: bool = typer.Option(False, "--plots", help="Also write PNG plots into RUN/report/."),
    html: bool = typer.Option(False, "--html", help="Also write RUN/report/index.html."),
) -> None:
    """Summarise a swarm run: best trial, decisions, and (with --plots / --html) its panels."""
    from evolora.swarm.report import load, maximizing, sections, write_plots
    from evolora.telemetry.report import print_sections, write_html

    console = Console()
    rundir, config, trials, events = load(run)
    print_sections(console, sections(config, trials, events))
    if not (plots or html):
        return
    folder = rundir.path / "report"
    images = write_plots(config, trials, events, folder, maximizing(events))
    for path in images.values():
        console.print(f"Wrote {path}", highlight=False)
    if html:
        page = write_html(
            folder / "index.html",
            f"Swarm run {rundir.path.name}",
            sections(config, trials, events, images),
            subtitle=f"objective {config.get('objective')}, {len(trials)} trials",
        )
        console.print(f"Wrote [bold]{page}[/bold]", highlight=False)
