"""`evolora host info|train` and the top-level `evolora evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from evolora.errors import EvoloraError
from evolora.telemetry.atomic import check_output_file

GRID_PER_CELL = 40  # evaluate's default examples per family x difficulty of a grid

console = Console()
PRECISION_HELP = ("auto (bf16 where a start-up probe shows it faster), fp32 or bf16 "
                  "(bf16 matmuls in the frozen linear layers; weights stay fp32).")

host_app = typer.Typer(
    name="host", help="Inspect and train host language models.", no_args_is_help=True
)


@host_app.command("info")
def info_command(
    spec: str = typer.Argument("builtin", help="'builtin', a model folder, or 'org/name' (cache)."),
    device: str = typer.Option(None, help="Torch device (default: cuda when available)."),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
) -> None:
    """Show a host's architecture, parameter count, vocabulary, context window, device and the
    precision it runs in."""
    from evolora.hosts import load_host

    host = load_host(spec, device=device, precision=precision)
    config = host.model.config
    rows = {
        "spec": spec,
        "architecture": type(host.model).__name__,
        "parameters": f"{host.n_params:,}",
        "layers": getattr(config, "num_hidden_layers", "?"),
        "hidden size": getattr(config, "hidden_size", "?"),
        "vocab": f"{len(host.tokenizer):,}",
        "context window": host.context or "unbounded",
        "dtype": str(host.model.dtype).replace("torch.", ""),
        "device": str(host.device),
        "precision": host.precision.label,
        "why": host.precision.reason,
    }
    for key, value in rows.items():
        console.print(f"[bold]{key:>15}[/bold]  {value}")


@host_app.command("train")
def train_command(
    config: Path = typer.Option(None, help="Training config YAML (configs/host_builtin.yaml)."),
    out: Path = typer.Option(Path("runs"), help="Folder in which the run folder is created."),
    resume: Path = typer.Option(None, help="Run folder of an interrupted run to continue."),
) -> None:
    """Train a host (tokenizer + small Llama) on the task TRAIN split and Shakespeare's plays."""
    from evolora.hosts.train import train_host
    from evolora.hosts.train_config import HostTrainConfig
    from evolora.telemetry import load_config

    if (config is None) == (resume is None):
        raise EvoloraError("Give exactly one of --config (a new run) or --resume (a run folder).")
    loaded = load_config(config, HostTrainConfig) if config is not None else None
    train_host(loaded, out=out, resume=resume, console=console)


def evaluate_command(
    host: str = typer.Option("builtin", help="'builtin', a model folder, or 'org/name' (cache)."),
    grid: str = typer.Option(None, help="Named task grid (default, easy, medium, hard, a family)."),
    dataset: str = typer.Option(None, help="JSONL file or hf:NAME[:SPLIT] dataset."),
    n: int = typer.Option(
        None,
        min=1,
        help="Examples per family x difficulty of a grid (default 40), or the first N records of "
        "a dataset (default: all of them).",
    ),
    split: str = typer.Option("holdout", help="Grid split to draw from: holdout or train."),
    seed: int = typer.Option(0, help="Seed of the examples drawn from the grid."),
    max_new_tokens: int = typer.Option(96, min=1, help="Longest completion generated."),
    batch_size: int = typer.Option(64, min=1, help="Prompts per generation micro-batch."),
    device: str = typer.Option(None, help="Torch device (default: cuda when available)."),
    adapter: Path = typer.Option(
        None,
        "--adapter",
        help="Score the host wearing this PEFT LoRA adapter folder, or the routed colony written "
        "by `evolora export --member colony`.",
    ),
    out: Path = typer.Option(None, help="Write the result as JSON to this file."),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    force: bool = typer.Option(False, "--force", help="Replace the --out file if it exists."),
) -> None:
    """Score a host's greedy completions per family x difficulty; print a table, write JSON."""
    from evolora.hosts import load_host
    from evolora.hosts.evaluate import accuracy_table, evaluate, grid_examples
    from evolora.hosts.routed import load_adapters
    from evolora.tasks import load_dataset

    if (grid is None) == (dataset is None):
        raise EvoloraError("Give exactly one of --grid NAME or --dataset PATH.")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        check_output_file(out, force)
    if grid is not None:
        examples = grid_examples(grid, n or GRID_PER_CELL, seed, split)
    else:
        examples = load_dataset(dataset)[:n]
        if not examples:
            raise EvoloraError(f"Dataset '{dataset}' holds no examples.")
    loaded = load_host(host, device=device, precision=precision)
    routed = load_adapters(loaded, adapter) if adapter is not None else None
    with console.status(f"generating {len(examples)} completions"):
        result = evaluate(
            loaded, examples, max_new_tokens=max_new_tokens, batch_size=batch_size, routed=routed
        )
    result.update(
        {
            "source": {"grid": grid, "dataset": dataset, "split": split if grid else None},
            "seed": seed,
            **loaded.precision.record(),
            "adapter": None if adapter is None else str(adapter.resolve()),
        }
    )
    console.print(accuracy_table(result))
    if out is not None:
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"result written to {out}")
