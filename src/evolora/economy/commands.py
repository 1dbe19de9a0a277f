"""`evolora economy run` and `evolora economy report`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer
from rich.console import Console

from evolora.errors import EvoloraError

PRESETS = ("default", "debug")

economy_app = typer.Typer(
    name="economy",
    help="Agent economy (MACO-LLM) that steers LoRA fine-tuning online.",
    no_args_is_help=True,
)


def preset_path(name_or_path: str) -> Path:
    """A config file path, or the packaged preset of that name (default, debug)."""
    if name_or_path in PRESETS:
        return Path(
            str(resources.files("evolora") / "configs" / "economy" / f"{name_or_path}.yaml")
        )
    return Path(name_or_path)


@economy_app.command("run")
def run_command(
    config: str = typer.Option(
        "default", "--config", "-c", help="Preset name (default, debug) or a YAML file."
    ),
    task: str | None = typer.Option(
        None, "--task", help="Task grid (default, easy, medium, hard, a family) or a dataset."
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Override workload.steps."),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
    output: Path = typer.Option(
        Path("runs"), "--output", "-o", help="Folder under which a new run folder is made."
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue this run folder from its last checkpoint."
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: best)."),
    accuracy: bool = typer.Option(
        True, "--accuracy/--no-accuracy", help="Measure holdout task accuracy at the end."
    ),
) -> None:
    """Fine-tune LoRA adapters of a host while an agent economy steers the hyperparameters."""
    from evolora.economy.config import EconomyConfig
    from evolora.economy.loop import run_economy
    from evolora.economy.workload import TaskSource
    from evolora.telemetry import Progress, RunDir
    from evolora.telemetry.config_io import load_config, validate_config

    console = Console()
    if resume is not None:
        if task is not None or seed is not None:
            raise EvoloraError("--task and --seed apply to new runs; a resumed run keeps its own.")
        run = RunDir.open(resume)
        cfg = run.config(EconomyConfig)
        if steps is not None:
            cfg = cfg.model_copy(
                update={"workload": cfg.workload.model_copy(update={"steps": steps})}
            )
        console.print(f"Resuming [bold]{run.path}[/bold] from its last checkpoint.")
    else:
        data = load_config(preset_path(config), EconomyConfig).model_dump(mode="json")
        if seed is not None:
            data["seed"] = seed
        for key, value in (("task", task), ("steps", steps)):
            if value is not None:
                data["workload"][key] = value
        cfg = validate_config(data, EconomyConfig, source="the command line")
        TaskSource(cfg.workload.task, cfg.seed)  # a bad task stops before a run folder is made
        run = RunDir.create(output, cfg, name="economy")
        console.print(f"Writing the run to [bold]{run.path}[/bold].")
    if device is not None:
        cfg = cfg.model_copy(update={"device": device})
    final = run_economy(
        cfg,
        run,
        progress_factory=lambda total: Progress(total, "economy", console=console),
        accuracy=accuracy,
    )
    run.close()
    shown = "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in final.items()
    )
    console.print(f"final: {shown}", highlight=False)
    console.print(f"run folder: {run.path}")


@economy_app.command("report")
def report_command(
    run_path: Path = typer.Argument(..., help="The run folder."),
    plots: bool = typer.Option(False, "--plots", help="Write PNG panels to RUN/report/."),
    html: bool = typer.Option(False, "--html", help="Write RUN/report/report.html."),
) -> None:
    """Summarise an economy run: agents, final metrics, and optionally plots and HTML."""
    from evolora.economy.report import agent_table, load, plot_panels, write_html
    from evolora.telemetry import RunDir

    console = Console()
    run = RunDir.open(run_path)
    data = load(run)
    if not data["steps"]:
        raise EvoloraError(f"Run '{run.path}' has no steps.jsonl records yet; nothing to report.")
    console.print(agent_table(data))
    if data["summary"]:
        final = data["summary"][-1]
        console.print(
            "final: "
            + "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in final.items()
            ),
            highlight=False,
        )
    if plots or html:
        pngs = plot_panels(data, run.path / "report")
        console.print(f"plots: {run.path / 'report'} ({len(pngs)} panels)")
        if html:
            console.print(f"html: {write_html(run, data, pngs)}")
