"""`evolora run`: the ecology from the command line, with a live line per generation."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer
from rich.console import Console

from evolora.errors import EvoloraError

PRESETS = ("default", "relaxed", "debug")
COLUMNS = [
    ("gen", "generation", "{:>4}"),
    ("pop", "population/size", "{:>4}"),
    ("act", "population/active", "{:>4}"),
    ("reward", "reward/treatment", "{:>7.3f}"),
    ("control", "reward/control", "{:>7.3f}"),
    ("roi", "roi/mean", "{:>6.2f}"),
    ("energy", "energy/mean", "{:>7.2f}"),
    ("gini", "energy/gini", "{:>5.2f}"),
    ("merges", "assimilation/merges", "{:>6}"),
    ("routed", "accuracy/routed", "{:>7.3f}"),
    ("host", "accuracy/host", "{:>6.3f}"),
    ("sec", "time/generation_s", "{:>5.1f}"),
]


def preset_path(name_or_path: str) -> Path:
    """A config file path, or the packaged preset of that name (default, relaxed, debug)."""
    if name_or_path in PRESETS:
        return Path(
            str(resources.files("evolora") / "configs" / "ecology" / f"{name_or_path}.yaml")
        )
    return Path(name_or_path)


def format_row(summary: dict) -> str:
    cells = []
    for title, key, fmt in COLUMNS:
        value = summary.get(key)
        width = len(fmt.format(0)) if "d" not in fmt else 4
        cells.append(
            " " * max(width, len(title)) if value is None else fmt.format(value).rjust(len(title))
        )
    return " ".join(cells)


def header() -> str:
    return " ".join(title.rjust(len(fmt.format(0))) for title, _, fmt in COLUMNS)


def run_command(
    config: str = typer.Option(
        "default", "--config", "-c", help="Preset name (default, relaxed, debug) or a YAML file."
    ),
    generations: int | None = typer.Option(
        None, "--generations", "-g", min=1, help="Override the number of generations."
    ),
    output: Path = typer.Option(
        Path("runs"), "--output", "-o", help="Folder under which a new run folder is made."
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue this run folder from its last checkpoint."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, cuda:1 ... (default: best available)."
    ),
) -> None:
    """Run the ecology: a LoRA colony on a frozen host earns, learns, reproduces and assimilates."""
    from evolora.ecology.config import EcologyConfig
    from evolora.ecology.loop import Ecology
    from evolora.hosts import load_host
    from evolora.telemetry.config_io import load_config
    from evolora.telemetry.progress import Progress
    from evolora.telemetry.rundir import RunDir

    console = Console()
    if resume is not None:
        run = RunDir.open(resume)
        cfg = run.config(EcologyConfig)
        if generations is not None:
            cfg = cfg.model_copy(update={"generations": generations})
        host = load_host(cfg.host, device or cfg.device)
        ecology = Ecology.resume(cfg, host, run)
        console.print(f"Resuming [bold]{run.path}[/bold] after generation {ecology.generation}.")
    else:
        cfg = load_config(preset_path(config), EcologyConfig)
        updates = {
            k: v for k, v in {"generations": generations, "seed": seed}.items() if v is not None
        }
        cfg = cfg.model_copy(update=updates)
        host = load_host(cfg.host, device or cfg.device)
        run = RunDir.create(output, cfg, name="ecology")
        ecology = Ecology.start(cfg, host, run)
        console.print(f"Writing the run to [bold]{run.path}[/bold] (host: {host!r}).")
    if ecology.finished:
        raise EvoloraError(
            f"Run '{run.path}' already finished its {cfg.generations} generations; pass "
            "--generations with a larger number to extend it."
        )
    with Progress(cfg.generations, "ecology", console=console) as progress:
        progress.completed = ecology.generation
        console.print(header(), style="bold", highlight=False)
        while not ecology.finished:
            summary = ecology.step()
            console.print(format_row(summary), highlight=False)
            progress.advance(
                summary={
                    "merges": summary["assimilation/merges"],
                    "reward": summary["reward/treatment"],
                }
            )
    ecology.close()
    print_final(console, ecology, run.path)


def print_final(console: Console, ecology, path: Path) -> None:
    """The closing summary: holdout accuracy of the colony against the frozen host, merges, ROI."""
    result = ecology.last_eval
    console.rule("holdout accuracy")
    for variant, label in [
        ("host", "frozen host"),
        ("merged", "merged adapter"),
        ("best", "best organelle"),
        ("routed", "routed colony"),
    ]:
        console.print(f"  {label:<16} {result[variant]['overall']:.3f}")
    gain = result["routed"]["overall"] - result["host"]["overall"]
    verdict = "above" if gain > 0 else "not above"
    console.print(f"  colony vs host   {gain:+.3f} ({verdict} the frozen host)")
    console.print(
        f"  merges: {ecology.merges}   organelles alive: {len(ecology.colony.organelles)}"
    )
    console.print(f"Run folder: [bold]{path}[/bold]  —  report: evolora report {path} --html")
