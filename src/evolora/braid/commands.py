"""`evolora braid ...`: pool make|list|combine|add|profile, train, run "prompt", eval, report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from evolora.errors import EvoloraError

braid_app = typer.Typer(help="Fuse several language models and learn how.", no_args_is_help=True)
pool_app = typer.Typer(help="The model pool: make the default specialists, list a pool.",
                       no_args_is_help=True)
braid_app.add_typer(pool_app, name="pool")

# Prompt tag -> task family, for `braid run` without --family.
TAGS = {"math": "math", "logic": "logic", "sort asc": "sorting", "sort desc": "sorting",
        "seq": "sequence", "json": "json_repair"}


def _config(path: Path | None, model, **overrides):
    from evolora.telemetry.config_io import load_config, validate_config

    data = load_config(path, model).model_dump() if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return validate_config(data, model, source=str(path or "the command line"))


@pool_app.command("make")
def pool_make(
    out: Path = typer.Option(Path("runs/braid-pool"), "--out", "-o", help="Pool folder to write."),
    config: Path | None = typer.Option(None, "--config", "-c", help="PoolMakeConfig YAML file."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Override the SFT steps."),
    seed: int | None = typer.Option(None, "--seed", help="Override the seed."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: best)."),
) -> None:
    """Fine-tune one LoRA specialist of the host per task family and save them as a pool."""
    from evolora.braid.config import PoolMakeConfig
    from evolora.braid.pool import check_new_pool_folder
    from evolora.braid.pool_make import make_pool
    from evolora.telemetry.progress import Progress

    cfg = _config(config, PoolMakeConfig, steps=steps, seed=seed)
    check_new_pool_folder(out)
    console = Console()
    console.print(f"Writing the pool to [bold]{out}[/bold] (a killed make continues from "
                  f"{out / 'checkpoints'}).")
    with Progress(cfg.steps + max(cfg.extra_steps.values(), default=0),
                  "specialists") as progress:
        def on_step(step, loss):
            progress.completed = step
            progress.advance(summary={"loss": round(loss, 4)})

        pool, tensors = make_pool(cfg, device, on_step, out / "checkpoints")
    pool.save(out, tensors, cfg.model_dump())
    _print_pool(pool.profiles)
    console.print(f"Wrote the pool to [bold]{out}[/bold].")


@pool_app.command("list")
def pool_list(folder: Path = typer.Argument(Path("runs/braid-pool"), help="Pool folder.")) -> None:
    """Show a pool's members and their profiles."""
    from evolora.braid.pool import read_profiles

    _print_pool(read_profiles(folder))


@pool_app.command("combine")
def pool_combine(
    base: Path = typer.Argument(..., help="Pool folder whose members are kept as they are."),
    other: Path = typer.Argument(..., help="Pool folder whose adapter members are added."),
    out: Path = typer.Option(..., "--out", "-o", help="Pool folder to write."),
    suffix: str = typer.Option("-b", "--suffix", help="Added to each added member's name."),
) -> None:
    """Write a pool of BASE's members plus OTHER's adapters, renamed (e.g. a second seed's)."""
    from evolora.braid.pool import combine_pools, read_profiles

    combine_pools(base, other, suffix, out)
    _print_pool(read_profiles(out))
    Console().print(f"Wrote the pool to [bold]{out}[/bold].")


@pool_app.command("add")
def pool_add(
    pool: Path = typer.Argument(..., help="Pool folder whose members are kept as they are."),
    model: Path = typer.Argument(..., help="Local HF model folder to add (member kind hf)."),
    name: str = typer.Option(..., "--name", help="The new member's name."),
    domain: str = typer.Option("general", "--domain",
                               help="The task family it is a specialist of, or general."),
    out: Path = typer.Option(..., "--out", "-o", help="Pool folder to write."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: best)."),
) -> None:
    """Write a pool of POOL's members plus MODEL, its skill measured as the pool's members'."""
    from evolora.braid.pool import read_profiles
    from evolora.braid.pool_add import add_member

    with Console().status(f"Measuring the skill of '{name}' per task family"):
        add_member(pool, model, name, domain, out, device)
    _print_pool(read_profiles(out))
    Console().print(f"Wrote the pool to [bold]{out}[/bold].")


@pool_app.command("train-member")
def pool_train_member(
    family: str = typer.Argument(..., help="The task family the member learns."),
    out: Path = typer.Option(..., "--out", "-o", help="HF model folder to write."),
    steps: int = typer.Option(10000, "--steps", help="Training steps (batches of 32)."),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler and the run."),
    host: str = typer.Option("builtin", "--host", help="The host whose weights are tuned."),
    difficulties: list[int] = typer.Option([1, 2, 3], "--difficulty", help="Train "
                                           "difficulties (repeat the option for several)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: best)."),
) -> None:
    """Fine-tune EVERY weight of the host on FAMILY and save it as a model folder for `pool add`.

    A killed run continues when run again with the same settings and --out (it checkpoints
    every 500 steps in OUT/checkpoints)."""
    import shutil

    from evolora.braid.member_train import check_member_settings, train_full_member
    from evolora.braid.pool_add import save_model_folder
    from evolora.telemetry.progress import Progress

    check_member_settings([family], difficulties, steps, lr)
    checkpoints = out / "checkpoints"
    if out.exists() and (not out.is_dir() or any(p != checkpoints for p in out.iterdir())):
        raise EvoloraError(f"--out '{out}' exists and holds more than a killed run's "
                           "checkpoints; choose a new or empty folder.")
    console = Console()
    console.print(f"Writing the member to [bold]{out}[/bold] (a killed run continues from "
                  f"{checkpoints}).")
    with Progress(steps, f"{family} member") as progress:
        def on_step(step, loss):
            progress.completed = step - 1
            progress.advance(summary={"loss": round(loss, 4)})

        member = train_full_member(host, family, difficulties, steps, lr, seed, device=device,
                                   on_step=on_step, checkpoints=checkpoints)
    save_model_folder(member, out)
    shutil.rmtree(checkpoints, ignore_errors=True)
    console.print(f"Wrote the member to [bold]{out}[/bold]. Add it to a pool with:")
    console.print(f"  evolora braid pool add POOL {out} --name {family}-full --domain {family} "
                  "--out NEWPOOL", highlight=False, soft_wrap=True)


@pool_app.command("profile")
def pool_profile(
    pool: Path = typer.Argument(..., help="Pool folder whose members are measured again."),
    out: Path = typer.Option(..., "--out", "-o", help="Pool folder to write."),
    examples: int = typer.Option(600, "--examples", min=1,
                                 help="Distinct prompts per family for each member's skill."),
    selection_fraction: float = typer.Option(
        0.4, "--selection-fraction", help="Draw them from this selection share of the holdout "
        "split (a braid run's selection_fraction, default 0.4, must be at least this)."),
    holdout: bool = typer.Option(False, "--holdout", help="Draw them from the whole holdout "
                                 "split instead (as `pool make` does; may hold evaluation "
                                 "prompts)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: best)."),
) -> None:
    """Write a pool of POOL's members with every member's skill measured again."""
    from evolora.braid.pool import read_profiles
    from evolora.braid.pool_profile import profile_pool

    with Console().status("Measuring skill") as status:
        profile_pool(pool, out, examples, None if holdout else selection_fraction, device,
                     lambda name: status.update(f"Measuring the skill of '{name}' per family"))
    _print_pool(read_profiles(out))
    Console().print(f"Wrote the pool to [bold]{out}[/bold].")


def _print_pool(profiles) -> None:
    from rich.table import Table

    from evolora.braid.pool_make import profile_table

    rows = profile_table(profiles)
    table = Table(title="model pool")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)


@braid_app.command("train")
def train_command(
    config: Path | None = typer.Option(None, "--config", "-c", help="TrainConfig YAML file "
                                       "(default: configs/braid/train.yaml values)."),
    pool: str | None = typer.Option(None, "--pool", help="Override the pool folder."),
    episodes: int | None = typer.Option(None, "--episodes", min=1, help="Override episodes."),
    seed: int | None = typer.Option(None, "--seed", help="Override the seed."),
    output: Path = typer.Option(Path("runs"), "--output", "-o", help="Runs folder."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue this run folder."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, ... (default: best)."),
) -> None:
    """Train the fusion banks, then the MetaBraider by REINFORCE; writes a run folder."""
    from evolora.braid.config import TrainConfig
    from evolora.braid.trainer import train
    from evolora.telemetry import RunDir
    from evolora.telemetry.progress import Progress

    console = Console()
    if resume is not None:
        run = RunDir.open(resume)
        cfg = run.config(TrainConfig)
    else:
        cfg = _config(config, TrainConfig, pool=pool, episodes=episodes, seed=seed)
        run = RunDir.create(output, cfg, name="braid")
    console.print(f"Writing the run to [bold]{run.path}[/bold].")
    updates = -(-cfg.episodes // cfg.batch)
    with Progress(updates, "braider") as progress:
        def on_update(update, total, stats):
            progress.completed = update
            progress.advance(summary={k: round(stats[k], 3) for k in (
                "reward/mean", "score/mean", "budget/compute", "entropy/models",
                "entropy/strategy")})

        def on_fusion(name, step, loss):
            if step % 10 == 0:
                progress.set_summary(f"fusion {name} step {step} loss {loss:.3f}")

        train(run, cfg, device, on_update, on_fusion)
    run.close()
    console.print(f"Done: braider in [bold]{run.path / 'braider'}[/bold].")


@braid_app.command("run")
def run_command(
    prompt: str = typer.Argument(..., help="A task prompt, e.g. 'math: 3+4='."),
    run: Path = typer.Option(..., "--run", "-r", help="A trained braid run folder."),
    family: str | None = typer.Option(None, "--family", help="Task family (default: the "
                                      "prompt's tag before ':')."),
    difficulty: int = typer.Option(2, "--difficulty", min=1, max=5),
    budget: float = typer.Option(1.0, "--budget", min=0.0, help="Compute budget (pool share)."),
    latency: float = typer.Option(2.0, "--latency", min=0.0, help="Latency limit."),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    """Print the braider's decision for a prompt, its explanation and the braid's answer."""
    from evolora.braid.explain import forward_with_explanation
    from evolora.braid.features import encode_tasks
    from evolora.braid.generation import generate
    from evolora.tasks import Example

    braid, braider, _ = _load_run(run, device)
    tag = prompt.split(":", 1)[0].strip()
    family = family or TAGS.get(tag, tag)
    example = Example(prompt, "", family, difficulty, {})
    braider.family_slot(family)
    inputs = encode_tasks([example], braid.pool.profiles, braider.slots(), [budget], [latency],
                          braid.pool.device)
    decision, explanation = forward_with_explanation(braider, inputs)
    console = Console()
    console.print(f"[bold]decision[/bold] {braider.plan(decision).spec(0, braider.members)}")
    for item in explanation:
        console.print("  " + item.sentence(), highlight=False)
    answer = generate(braid, [prompt], braider.plan(decision))[0]
    console.print(f"[bold]answer[/bold] {answer!r}")


def _load_run(folder: Path, device):
    from evolora.braid.braided import BraidedLLM
    from evolora.braid.braider import MetaBraider
    from evolora.braid.config import TrainConfig
    from evolora.braid.pool import load_pool
    from evolora.telemetry import RunDir

    run = RunDir.open(folder)
    cfg = run.config(TrainConfig)
    if not (run.path / "braider").is_dir():
        raise EvoloraError(f"Run '{folder}' has no trained braider yet; finish it with --resume.")
    pool = load_pool(cfg.pool, device)
    return (BraidedLLM.load(run.path / "braid", pool),
            MetaBraider.load(run.path / "braider", pool.device), cfg)


@braid_app.command("eval")
def eval_command(
    run: Path = typer.Argument(..., help="A trained braid run folder."),
    n: int = typer.Option(200, "--n", min=1,
                         help="Evaluation prompts (holdout, outside the braider's reward share)."),
    budget: float = typer.Option(1.0, "--budget", min=0.0),
    seed: int = typer.Option(1, "--seed"),
    device: str | None = typer.Option(None, "--device"),
) -> None:
    """Holdout accuracy and compute of the braider's greedy decisions against each model."""
    from evolora.braid.evaluate import evaluate_braider, evaluate_single
    from evolora.braid.trainer import families_of, role_prompts
    from evolora.ecology.roles import Role
    from evolora.tasks import TaskGrid

    braid, braider, cfg = _load_run(run, device)
    import numpy as np

    examples = role_prompts(TaskGrid(families_of(cfg), cfg.difficulties),
                            np.random.default_rng(seed), n, Role.evaluate, cfg.selection_fraction)
    console = Console()
    for name in braid.pool.names:
        console.print(f"  {name:<20} accuracy {evaluate_single(braid, name, examples):.3f}")
    acc, compute = evaluate_braider(braid, braider, examples, budget, cfg)
    console.print(f"  {'MetaBraider':<20} accuracy {acc:.3f}  compute {compute:.3f}")


@braid_app.command("report")
def report_command(
    run: Path = typer.Argument(..., help="A braid run folder."),
    plots: bool = typer.Option(False, "--plots", help="Write PNG plots to RUN/report/."),
    html: bool = typer.Option(False, "--html", help="Write RUN/report/report.html."),
) -> None:
    """Summarise a braid run: reward, score, compute and per-head entropy over training."""
    from evolora.braid.report import report

    for line in report(run, plots, html):
        Console().print(line, highlight=False)
