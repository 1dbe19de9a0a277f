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
    config: str | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Preset name (default, relaxed, debug), or a YAML file laid over the default preset "
        "(it need only hold what differs, e.g. `host: path/to/model`).",
    ),
    host: str | None = typer.Option(
        None,
        "--host",
        help="The frozen host model: 'builtin', a local Hugging Face model folder, or a cached "
        "'org/name' (overrides the config's host).",
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
    precision: str | None = typer.Option(
        None, "--precision", help="Override the host precision: auto, fp32 or bf16."
    ),
) -> None:
    """Run the ecology: a LoRA colony on a frozen host earns, learns, reproduces and assimilates."""
    from evolora.telemetry.progress import Progress

    console = Console()
    if resume is not None:
        given = [
            flag
            for flag, value in [
                ("--config", config),
                ("--host", host),
                ("--seed", seed),
                ("--learning", learning),
                ("--precision", precision),
            ]
            if value is not None
        ]
        if given:
            raise EvoloraError(
                f"{', '.join(given)} applies to new runs; a resumed run keeps its own config "
                "(only --generations and --device may change)."
            )
        ecology, run, cfg = resume_run(resume, generations, device)
        console.print(f"Resuming [bold]{run.path}[/bold] after generation {ecology.generation}.")
    else:
        cfg = new_config(config, host, generations, seed, learning, precision)
        ecology, run = start_run(cfg, output, device)
        console.print(f"Writing the run to [bold]{run.path}[/bold] (host: {ecology.host!r}).")
    try:
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
    finally:
        ecology.close()  # also lets go of the run folder's lock
    print_final(console, ecology, run.path)


def new_config(
    config: str | None,
    host: str | None,
    generations: int | None,
    seed: int | None,
    learning: str | None,
    precision: str | None = None,
):
    """The validated config of a new run: a preset, or a YAML file over the default preset, then
    the command line's overrides; a local host folder is stored as an absolute path."""
    from evolora.ecology.config import EcologyConfig
    from evolora.tasks.grid import TaskGrid
    from evolora.telemetry.config_io import layered, read_yaml, validate_config

    name = config or "default"
    path = preset_path(name)
    if not path.is_file():
        raise EvoloraError(
            f"Config '{name}' is neither a preset ({', '.join(PRESETS)}) nor an existing YAML file."
        )
    data = read_yaml(path)
    if name not in PRESETS:
        data = layered(read_yaml(preset_path("default")), data)
    data = validate_config(data, EcologyConfig, source=str(path)).model_dump()
    try:
        TaskGrid(data["grid"]["families"], data["grid"]["difficulties"])
    except EvoloraError as problem:
        raise EvoloraError(f"{path}: field 'grid': {problem}") from None
    overrides = {"generations": generations, "seed": seed, "host": host, "precision": precision}
    data.update({k: v for k, v in overrides.items() if v is not None})
    if learning is not None:
        data["learning"]["rules"] = [r.strip() for r in learning.split(",") if r.strip()]
    if data["host"] != "builtin" and Path(data["host"]).expanduser().exists():
        data["host"] = str(Path(data["host"]).expanduser().resolve())
    return validate_config(data, EcologyConfig, source="the command line")


def start_run(cfg, output: Path, device: str | None):
    """Load the host, check the colony fits in memory, make and lock the run folder, and write
    the generation-0 checkpoint; a failure before that checkpoint leaves no folder behind."""
    from evolora.ecology.loop import Ecology
    from evolora.hosts import load_host
    from evolora.telemetry.rundir import RunDir

    loaded = load_host(cfg.host, device or cfg.device, cfg.precision)
    check_colony_fits(cfg, loaded)
    extra = {"host_precision": loaded.precision.record()}
    run = RunDir.create(output, cfg, name="ecology", extra=extra).lock()
    try:
        ecology = Ecology.start(cfg, loaded, run)
        ecology.checkpoint()
    except BaseException:
        run.discard()
        raise
    return ecology, run


def resume_run(path: Path, generations: int | None, device: str | None):
    """Open and lock a run folder and continue it from its latest checkpoint; a new
    `--generations` is written to its config.yaml."""
    from evolora.ecology.config import EcologyConfig
    from evolora.ecology.loop import Ecology
    from evolora.hosts import load_host
    from evolora.hosts.precision import Precision
    from evolora.telemetry.rundir import RunDir

    run = RunDir.open(path).lock()
    try:
        cfg = run.config(EcologyConfig)
        if run.latest_checkpoint() is None:
            raise EvoloraError(
                f"Run '{run.path}' has no checkpoint to resume from: it stopped before writing "
                "its generation-0 checkpoint; start a new run instead."
            )
        if generations is not None:
            cfg = cfg.model_copy(update={"generations": generations})
        # The precision the run started in (an `auto` choice is not probed again).
        recorded = run.meta.get("host_precision")
        precision = Precision.from_record(recorded) if recorded else cfg.precision
        ecology = Ecology.resume(cfg, load_host(cfg.host, device or cfg.device, precision), run)
        if ecology.finished:
            raise EvoloraError(
                f"Run '{run.path}' already finished {ecology.generation} generations; pass "
                "--generations with a larger number to extend it."
            )
        run.save_config(cfg)
    except BaseException:
        run.close()
        raise
    return ecology, run, cfg


def check_colony_fits(cfg, host) -> None:
    """Refuse a host the adapters cannot adapt, and a config whose adapter slots (set by
    population.max) cannot fit on the device."""
    from evolora.ecology.colony import adapter_population, slots_needed
    from evolora.hosts.loading import check_adaptable
    from evolora.hosts.memory import check_fits

    check_adaptable(host.model, cfg.host)

    shapes_only = cfg.model_copy(update={"lora": cfg.lora.model_copy(update={"basis": "random"})})
    probe = adapter_population(host, shapes_only, 0)
    per_slot = sum(cfg.lora.rank * (d_in + d_out) for d_in, d_out in probe.layer_shapes.values())
    probe.detach()
    slots = slots_needed(cfg)
    check_fits(
        4 * per_slot * slots,
        host.device,
        f"population.max={cfg.population.max} ({slots:,} adapter slots of {per_slot:,} numbers)",
        "lower population.max (or learning.es.pairs)",
    )


def print_final(console: Console, ecology, path: Path) -> None:
    """The closing summary: holdout accuracy (± standard error) of every variant, the routed
    colony's paired difference from the frozen host with its 95 % interval, and how many cells
    the colony really routes to an organelle (the rest fall back to the merged adapter or to the
    bare host)."""
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
    to_host = result.get("cells_routed_to_host", 0)
    console.print(
        f"  routing: {routed} of {cells} cells go to an organelle; the other {cells - routed} "
        f"fall back to the merged adapter ({cells - routed - to_host}) or the bare host "
        f"({to_host})"
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
    from evolora.ecology.report import compute, load_run, run_figures, sections, write_plots
    from evolora.telemetry.dashboard.figures import plotly_figure
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
            figures=[
                plotly_figure(name, title, panels)
                for name, (title, panels) in run_figures(records).items()
            ],
        )
        console.print(f"Wrote [bold]{page}[/bold]", highlight=False)


class Member(str, Enum):
    """Which adapter of a run `evolora export` writes."""

    best = "best"
    merged = "merged"
    colony = "colony"


def export_command(
    run: Path = typer.Argument(..., help="A run folder written by `evolora run`."),
    out: Path = typer.Argument(..., help="New (or empty) folder to write the PEFT adapter to."),
    member: Member = typer.Option(
        ...,
        "--member",
        help="best: the organelle with the largest paired edge over the merged adapter; merged: "
        "the colony's adapter; colony: the routed colony (its adapters and routing table, which "
        "`evolora evaluate --adapter OUT` loads).",
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
    from evolora.telemetry.atomic import user_file_mode
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
        if member is Member.colony:
            path, what = export_colony(ecology, cfg, out), "the routed colony"
        elif member is Member.best:
            best = best_organelle(ecology.colony)
            if best is None:
                what += " (no organelle has paired episodes, so it is also the best)"
            else:
                slot = best.slot
                what = f"organelle {best.id} (species {best.species}, energy {best.energy:.2f})"
        if member is not Member.colony:
            path = export_peft(ecology.population, slot, out, base_model_name(cfg.host))
    finally:
        ecology.close()
    for written in Path(path).rglob("*"):
        if written.is_file():
            user_file_mode(written)  # safetensors writes 0600; an export is meant to be shared
    how = (
        f"score it with: evolora evaluate --host {cfg.host} --adapter {path} --dataset FILE"
        if member is Member.colony
        else "load it with peft.PeftModel.from_pretrained(model, path)"
    )
    console.print(
        f"Wrote {what} after generation {ecology.generation} to [bold]{path}[/bold] ({how}).",
        highlight=False,
    )


def export_colony(ecology, cfg, out: Path) -> Path:
    """Write the routed colony as one PEFT folder per adapter it uses plus routing.json: each
    cell goes where the ecology's routing check sends it (an organelle, else the merged one)."""
    from evolora.ecology.colony import MERGED_SLOT
    from evolora.ecology.organelle import cell_key
    from evolora.hosts.routed import write_routing
    from evolora.lora import export_peft
    from evolora.tasks.grid import TaskGrid

    names = {MERGED_SLOT: "merged"}
    names.update({o.slot: f"organelle-{o.id}" for o in ecology.colony.organelles})
    table = ecology.routes()
    routes = {}
    for cell in TaskGrid(cfg.grid.families, cfg.grid.difficulties).cells:
        if table[cell] != MERGED_SLOT:
            routes[cell_key(cell)] = names[table[cell]]
    used = ["merged", *sorted(set(routes.values()))]
    out.mkdir(parents=True, exist_ok=True)
    base = base_model_name(cfg.host)
    for slot, name in names.items():
        if name in used:
            export_peft(ecology.population, slot, out / name, base)
    write_routing(out, routes, "merged", used)
    return out


def base_model_name(spec: str) -> str:
    """The base model an exported adapter names: a model id as given, else its absolute folder."""
    from evolora.hosts.loading import resolve_spec

    if spec != "builtin" and not Path(spec).expanduser().exists():
        return spec
    return str(resolve_spec(spec).resolve())
