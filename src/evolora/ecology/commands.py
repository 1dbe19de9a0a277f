"""The ecology's commands: `evolora run` (a live line per generation), `report` and `export`."""

from __future__ import annotations

from enum import Enum
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
    learning: str | None = typer.Option(
        None,
        "--learning",
        help="Override learning.rules, comma-separated and applied in order: backprop (Adam, "
        "gradients through the frozen host: the reference), es, hebbian (gradient-free); "
        "e.g. --learning es,hebbian.",
    ),
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, cuda:1 ... (default: best available)."
    ),
) -> None:
    """Run the ecology: a LoRA colony on a frozen host earns, learns, reproduces and assimilates."""
    from evolora.ecology.config import EcologyConfig
    from evolora.ecology.loop import Ecology
    from evolora.hosts import load_host
    from evolora.telemetry.config_io import load_config, validate_config
    from evolora.telemetry.progress import Progress
    from evolora.telemetry.rundir import RunDir

    console = Console()
    if resume is not None:
        if learning is not None:
            raise EvoloraError("--learning applies to new runs; a resumed run keeps its own rules.")
        run = RunDir.open(resume)
        cfg = run.config(EcologyConfig)
        if generations is not None:
            cfg = cfg.model_copy(update={"generations": generations})
        host = load_host(cfg.host, device or cfg.device, cfg.precision)
        ecology = Ecology.resume(cfg, host, run)
        console.print(f"Resuming [bold]{run.path}[/bold] after generation {ecology.generation}.")
    else:
        data = load_config(preset_path(config), EcologyConfig).model_dump()
        overrides = {"generations": generations, "seed": seed}
        data.update({k: v for k, v in overrides.items() if v is not None})
        if learning is not None:
            data["learning"]["rules"] = [r.strip() for r in learning.split(",") if r.strip()]
        cfg = validate_config(data, EcologyConfig, source="the command line")
        host = load_host(cfg.host, device or cfg.device, cfg.precision)
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
    """The closing summary: holdout accuracy (± standard error) of every variant, the routed
    colony's paired difference from the frozen host with its 95 % interval, and how many cells
    the colony really routes to an organelle (the rest fall back to the merged adapter)."""
    result = ecology.last_eval
    n = result["host"]["n"]
    console.rule(f"holdout accuracy ({n} prompts, never trained on)")
    for variant, label in [
        ("host", "frozen host"),
        ("merged", "merged adapter"),
        ("best", "best organelle"),
        ("routed", "routed colony"),
    ]:
        console.print(
            f"  {label:<16} {result[variant]['overall']:.3f} ± {result[variant]['se']:.3f}"
        )
    gain = result["routed_vs_host"]
    low, high = gain["ci95"]
    verdict = "above" if low > 0 else "not shown above"
    console.print(
        f"  colony vs host   {gain['mean']:+.3f}  95% interval [{low:+.3f}, {high:+.3f}] "
        f"({verdict} the frozen host)"
    )
    cells = len(result["routes"])
    routed = result["cells_routed_to_organelles"]
    console.print(
        f"  routing: {routed} of {cells} cells go to an organelle; the other {cells - routed} "
        "fall back to the merged adapter"
    )
    rules = ", ".join(
        f"{rule.name} ({'gradient-free' if rule.gradient_free else 'gradients through the host'})"
        for rule in ecology.rules
    )
    console.print(f"  learning: {rules}")
    console.print(
        f"  merges: {ecology.merges}   organelles alive: {len(ecology.colony.organelles)}"
    )
    console.print(f"Run folder: [bold]{path}[/bold]  —  report: evolora report {path} --html")


def report_command(
    run: Path = typer.Argument(..., help="A run folder written by `evolora run`."),
    plots: bool = typer.Option(False, "--plots", help="Also write PNG plots into RUN/report/."),
    html: bool = typer.Option(
        False, "--html", help="Also write RUN/report/index.html, one self-contained page."
    ),
    last: int = typer.Option(
        5, "--last", min=1, help="How many assimilation attempts and gating snapshots to show."
    ),
) -> None:
    """Summarise a run: ROI, energy Gini, population, species, assimilation gates, accuracy."""
    from evolora.ecology.report import compute, load_run, sections, write_plots
    from evolora.telemetry.report import print_sections, write_html

    console = Console()
    records = load_run(run)
    report = compute(records, last=last)
    print_sections(console, sections(report))
    if not (plots or html):
        return
    folder = records.path / "report"
    images = write_plots(records, folder)
    for path in images.values():
        console.print(f"Wrote {path}", highlight=False)
    if html:
        page = write_html(
            folder / "index.html",
            f"Ecology run {records.path.name}",
            sections(report, images),
            subtitle=f"generation {report['run']['generation']} of "
            f"{report['run']['generations']}, host {report['run']['host']}",
        )
        console.print(f"Wrote [bold]{page}[/bold]", highlight=False)


class Member(str, Enum):
    """Which adapter of a run `evolora export` writes."""

    best = "best"
    merged = "merged"


def export_command(
    run: Path = typer.Argument(..., help="A run folder written by `evolora run`."),
    out: Path = typer.Argument(..., help="New (or empty) folder to write the PEFT adapter to."),
    member: Member = typer.Option(
        ...,
        "--member",
        help="best: the organelle with the largest paired edge over the merged adapter; merged: "
        "the colony's adapter.",
    ),
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, cuda:1 ... (default: the run's device)."
    ),
) -> None:
    """Write one adapter of a run, from its last checkpoint, as a PEFT LoRA adapter folder."""
    from evolora.ecology.colony import MERGED_SLOT
    from evolora.ecology.config import EcologyConfig
    from evolora.ecology.evaluation import best_organelle
    from evolora.ecology.loop import Ecology
    from evolora.hosts import load_host
    from evolora.lora import export_peft
    from evolora.telemetry.rundir import RunDir

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EvoloraError(
            f"Output '{out}' already exists and is not an empty folder; choose a new folder."
        )
    console = Console()
    folder = RunDir.open(run)
    cfg = folder.config(EcologyConfig)
    host = load_host(cfg.host, device or cfg.device, cfg.precision)
    ecology = Ecology.resume(cfg, host, folder)
    try:
        slot, what = MERGED_SLOT, "the colony's merged adapter"
        if member is Member.best:
            best = best_organelle(ecology.colony)
            if best is None:
                what += " (no organelle has paired episodes, so it is also the best)"
            else:
                slot = best.slot
                what = f"organelle {best.id} (species {best.species}, energy {best.energy:.2f})"
        path = export_peft(ecology.population, slot, out, base_model_name(cfg.host))
    finally:
        ecology.close()
    console.print(
        f"Wrote {what} after generation {ecology.generation} to [bold]{path}[/bold] "
        "(load it with peft.PeftModel.from_pretrained(model, path)).",
        highlight=False,
    )


def base_model_name(spec: str) -> str:
    """The base model an exported adapter names: a model id as given, else its absolute folder."""
    from evolora.hosts.loading import resolve_spec

    if spec != "builtin" and not Path(spec).expanduser().exists():
        return spec
    return str(resolve_spec(spec).resolve())
