"""How far each learning rule moves one adapter in equal wall-clock, when it trains as a specialist.

One LoRA adapter on the built-in host is trained on a single family (difficulties 1-3) for the same
wall-clock budget by each rule, then scored on that family's holdout prompts (never trained on):
  host      the frozen host
  es        the ecology's evolution strategies (antithetic low-rank noise, batched forward)
  es_host   the same ES on an adapter in the host basis (`lora.basis: host`, LoRA-XS)
  hebbian   the ecology's reward-modulated Hebbian rule (node perturbation)
  sft       PEFT LoRA with back-propagation through the host (AdamW): the reference

It separates "the colony cannot find a better adapter" from "there is no better adapter": if back-
propagation raises the family's accuracy in the budget and the gradient-free rules do not, the
limit is the rules' signal, not the host.

python benchmarks/learning_rules.py [--family sorting] [--budget 90] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from _common import mean_std, write_result
from ecology_vs_baselines import run_host, run_sft, run_single_es, train_batch
from evolora.ecology.hebbian import HebbianJob, hebbian_step

from evolora.ecology.colony import adapter_population
from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import holdout_examples, slot_scores, summarize
from evolora.hosts import load_host
from evolora.tasks import TaskGrid
from evolora.telemetry.config_io import load_config


def run_hebbian(cfg, host, holdout, budget, seed, root):
    """One adapter, the ecology's Hebbian rule, a batch as large as the whole colony's per step."""
    grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    population = adapter_population(host, cfg, 1)
    rng = np.random.default_rng(seed)
    size = cfg.learning.es.batch * cfg.population.initial
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        batch = train_batch(grid, rng, size)
        hebbian_step(host, population, [HebbianJob(0, batch)], cfg.learning.hebbian, rng)
        steps += 1
    result = summarize(
        slot_scores(host, population, [0], holdout, cfg.grid.max_new_tokens)[0], holdout
    )
    population.detach()
    result["steps"] = steps
    return result


def run_es_host(cfg, host, holdout, budget, seed, root):
    """The ecology's ES rule on one adapter in the host basis (r x r cores per layer)."""
    cfg = cfg.model_copy(deep=True)
    cfg.lora.basis = "host"
    return run_single_es(cfg, host, holdout, budget, seed, root)


RULES = {
    "host": run_host,
    "es": run_single_es,
    "es_host": run_es_host,
    "hebbian": run_hebbian,
    "sft": run_sft,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="sorting", help="the family the adapter specialises in")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds per rule and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default="default", help="ecology preset or YAML file")
    parser.add_argument("--per-cell", type=int, default=24, help="holdout examples per cell")
    args = parser.parse_args()
    base = load_config(preset_path(args.config), EcologyConfig)
    base.grid.families = [args.family]
    host = load_host(base.host, base.device)
    results: dict[str, list[dict]] = {rule: [] for rule in RULES}
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            cfg = base.model_copy(update={"seed": seed})
            grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
            holdout = holdout_examples(grid, args.per_cell, seed)
            for rule, runner in RULES.items():
                result = runner(cfg, host, holdout, args.budget, seed, root)
                results[rule].append(result)
                print(f"seed {seed} {rule:>8}: accuracy {result['overall']:.3f}", flush=True)
    cells = sorted(results["host"][0]["cell"])
    rows = [
        "| rule | steps | accuracy | " + " | ".join(cells) + " |",
        "|---|---:|---:|" + "---:|" * len(cells),
    ]
    figures = {}
    for rule, runs in results.items():
        overall = np.array([r["overall"] for r in runs])
        per_cell = {c: np.array([r["cell"][c] for r in runs]) for c in cells}
        steps = np.mean([r.get("steps", 0) for r in runs])
        figures[rule] = {
            "overall_mean": float(overall.mean()),
            "overall_std": float(overall.std()),
            "cell": {c: [float(v.mean()), float(v.std())] for c, v in per_cell.items()},
            "steps_mean": float(steps),
        }
        row = " | ".join(mean_std(v) for v in per_cell.values())
        rows.append(f"| {rule} | {steps:.0f} | {mean_std(overall)} | {row} |")
    text = (
        f"One adapter specialising in `{args.family}` (difficulties {base.grid.difficulties}), "
        f"{args.budget:.0f} s of wall-clock per rule and seed, {len(args.seeds)} seeds, "
        f"{args.per_cell} holdout prompts per cell; accuracy = exact answers, mean ± std.\n\n"
        + "\n".join(rows)
    )
    print(text)
    write_result(f"learning_rules_{args.family}", figures, text)


if __name__ == "__main__":
    main()
