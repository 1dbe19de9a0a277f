"""`evolora reso ...`: train, generate, chat and report for the resonant transformer."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from evolora.errors import EvoloraError

reso_app = typer.Typer(name="reso", help="The resonant transformer (Reso-LLM v2).",
                       no_args_is_help=True)

MODEL_HELP = "A model folder or a reso run folder (default: the newest run under runs/)."


@reso_app.command("train")
def train_command(
    preset: str | None = typer.Option(None, "--preset", help="tiny, small, medium or large."),
    ablate: list[str] = typer.Option([], "--ablate", help="Disable this extension (repeatable)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="A YAML training config."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Override optim.steps."),
    seed: int | None = typer.Option(None, "--seed", help="Override the seed."),
    output: Path = typer.Option(Path("runs"), "--output", "-o", help="Where the run folder goes."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue this run folder."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda ... (default: best)."),
) -> None:
    """Train a Reso model on Shakespeare plus the task grid, every extension active."""
    from evolora.reso.train import train_reso
    from evolora.reso.train_config import ResoTrainConfig
    from evolora.telemetry import load_config, validate_config

    console = Console()
    if resume is not None:
        train_reso(resume=resume, console=console, device=device)
        return
    data = load_config(config, ResoTrainConfig).model_dump() if config else {}
    data.setdefault("model", {})
    if preset is not None:
        data["model"]["preset"] = preset
    if ablate:
        data["model"]["ablate"] = sorted({*data["model"].get("ablate", []), *ablate})
    if steps is not None:
        data.setdefault("optim", {})["steps"] = steps
    if seed is not None:
        data["seed"] = seed
    train_reso(validate_config(data, ResoTrainConfig, "reso train config"), out=output,
               console=console, device=device)


def resolve_model(path: Path | None) -> Path:
    """The model folder behind `path` (a model folder, a run folder, or the newest reso run)."""
    if path is None:
        runs = sorted(Path("runs").glob("reso-*/model/config.json"))
        if not runs:
            raise EvoloraError(
                "No trained Reso model found under runs/; train one (`evolora reso train`) or "
                "pass --model FOLDER."
            )
        return runs[-1].parent
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    raise EvoloraError(f"--model {path} is neither a Reso model folder nor a reso run folder.")


def load_engine(path: Path | None, device: str | None = None):
    """A `ResoEngine` over the model at `path` (see `resolve_model`)."""
    from transformers import AutoTokenizer

    from evolora.hosts.loading import pick_device, quiet_transformers
    from evolora.reso.inference import ResoEngine
    from evolora.reso.model import ResoForCausalLM

    folder = resolve_model(path)
    if json.loads((folder / "config.json").read_text()).get("model_type") != "reso":
        raise EvoloraError(f"{folder} holds no Reso model (its model_type is not 'reso').")
    with quiet_transformers():
        model = ResoForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return ResoEngine(model.to(pick_device(device)), tokenizer)


def print_result(console: Console, result, metrics: bool = True) -> None:
    """The text and, with `metrics`, the monitor's and agency's readings."""
    console.print(result.text, markup=False, highlight=False)
    if not metrics:
        return
    console.print(
        f"[dim]{result.tokens_generated} tokens, {result.generation_time_ms:.0f} ms, stability "
        f"{result.stability} (lyapunov {result.lyapunov:.3f}), final temperature "
        f"{result.temperature_trace[-1] if result.temperature_trace else 0:.2f}, layers skipped "
        f"{result.skipped_layer_fraction:.0%}[/dim]"
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning: {warning}[/yellow]")
    if result.goal_progress:
        console.print(f"[dim]goal progress: {result.goal_progress}; achieved: "
                      f"{result.goals_achieved}[/dim]")


@reso_app.command("generate")
def generate_command(
    prompt: str = typer.Argument(..., help="The prompt."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    goal: str | None = typer.Option(None, "--goal", help="An explicit goal for the agency layer."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", "-n", min=0),
    temperature: float = typer.Option(0.7, "--temperature", "-t", min=0.0),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    """Generate with the stability monitor (and a goal), printing the text and its readings."""
    engine = load_engine(model, device)
    if goal:
        result = engine.generate_with_goal(prompt, goal, max_new_tokens, temperature, seed)
    else:
        result = engine.generate(prompt, max_new_tokens, temperature, seed)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        print_result(Console(), result)


@reso_app.command("chat")
def chat_command(
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", "-n", min=1),
    temperature: float = typer.Option(0.7, "--temperature", "-t", min=0.0),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    """Chat: `exit`, `goal <text>`, `status`, `metrics` (toggle), anything else is a prompt."""
    from evolora.reso.chat import chat_loop

    chat_loop(load_engine(model, device), Console(), max_new_tokens, temperature)


@reso_app.command("report")
def report_command(
    run: Path = typer.Argument(..., help="A reso run folder."),
    plots: bool = typer.Option(False, "--plots", help="Write PNG curves into RUN/report/."),
    html: bool = typer.Option(False, "--html", help="Write RUN/report/report.html."),
) -> None:
    """Summarise a training run: losses, held-out loss and the extensions' readings."""
    from evolora.reso.report import report_run

    report_run(run, Console(), plots, html)
