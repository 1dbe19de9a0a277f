"""`evolora tasks`: list the task families, show samples, export examples as JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress

from evolora.tasks.base import MAX_DIFFICULTY, MIN_DIFFICULTY
from evolora.tasks.grid import TaskGrid
from evolora.tasks.registry import family_names, get_family
from evolora.tasks.splits import check_split, split_of
from evolora.telemetry.atomic import check_output_file

tasks_app = typer.Typer(
    name="tasks", help="List, sample and export task families.", no_args_is_help=True
)


@tasks_app.command("list")
def list_command() -> None:
    """List the registered task families, each with an example at the easiest and hardest level."""
    rng = np.random.default_rng(0)
    width = max(len(name) for name in family_names())
    for name in family_names():
        family = get_family(name)
        typer.echo(f"{name:<{width}}  {family.describe()}")
        for difficulty in (MIN_DIFFICULTY, MAX_DIFFICULTY):
            example = family.sample(rng, difficulty)
            typer.echo(f"{'':<{width}}  d{difficulty}: {example.prompt} -> {example.answer}")


@tasks_app.command("sample")
def sample_command(
    family: str = typer.Argument(..., help="Family name (see `evolora tasks list`)."),
    difficulty: int = typer.Option(1, "--difficulty", "-d", help="Difficulty, 1 (easy) to 5."),
    n: int = typer.Option(5, "--n", min=1, help="How many examples to show."),
    split: str = typer.Option(None, "--split", help="Only from this split: train or holdout."),
    seed: int = typer.Option(
        0, "--seed", help="Random seed; the same seed shows the same examples."
    ),
) -> None:
    """Show examples of one family at one difficulty: split, prompt -> answer."""
    task = get_family(family)
    if split is not None:
        check_split(split)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        example = task.sample(rng, difficulty, split)
        typer.echo(f"{split_of(example):<7}  {example.prompt} -> {example.answer}")


@tasks_app.command("export")
def export_command(
    out: Path = typer.Argument(..., help="The JSONL file to write."),
    grid: str = typer.Option(
        "default", "--grid", help="Named grid: default, easy, medium, hard or a family name."
    ),
    n: int = typer.Option(1000, "--n", min=1, help="How many examples to write."),
    split: str = typer.Option(None, "--split", help="Only from this split: train or holdout."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed writes the same file."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it already exists."),
) -> None:
    """Write `n` examples drawn uniformly over a grid's cells to a JSONL file.

    Each line holds prompt, answer, family, difficulty and meta (with the split), the record
    format `load_dataset` reads back.
    """
    task_grid = TaskGrid.named(grid)
    if split is not None:
        check_split(split)
    check_output_file(out, force)
    rng = np.random.default_rng(seed)
    lines = []
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        job = progress.add_task(f"sampling {grid}", total=n)
        for _ in range(n):
            example = task_grid.sample(rng, split=split)
            record = {
                "prompt": example.prompt,
                "answer": example.answer,
                "family": example.family,
                "difficulty": example.difficulty,
                "meta": {**example.meta, "split": split_of(example)},
            }
            lines.append(json.dumps(record, separators=(",", ":")))
            progress.advance(job)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    difficulties = ", ".join(map(str, task_grid.difficulties))
    typer.echo(
        f"Wrote {n} examples ({', '.join(task_grid.families)}; difficulty {difficulties}) to {out}"
    )
