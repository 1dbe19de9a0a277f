"""Learning rules head to head: one adapter specialising in one family, each rule, equal wall-clock.

Each registered rule that needs no gene pool (backprop, es, hebbian) trains one adapter of the
preset's shape on the family's learning prompts for the same wall-clock budget, through the rule
plug-in the colony uses; the frozen host is the baseline. Accuracy = exact answers on up to
`--per-cell` distinct holdout prompts per cell, mean ± std over seeds.

python benchmarks/learning_rules.py [--family sorting] [--budget 60] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import mean_std, write_result
from ecology_vs_baselines import learn_batch

from evolora.ecology.colony import adapter_population
from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import holdout_examples, slot_scores, summarize
from evolora.ecology.learning import RULES, LearningJob
from evolora.hosts import load_host
from evolora.tasks import TaskGrid
from evolora.telemetry.config_io import load_config

NAMES = ("host", "backprop", "es", "hebbian")


def run(name: str, cfg: EcologyConfig, host, holdout, budget: float) -> dict:
    """Train one adapter with the named rule for `budget` seconds; score it on the holdout."""
    tokens = cfg.grid.max_new_tokens
    if name == "host":
        return {**summarize(slot_scores(host, None, [-1], holdout, tokens)[0], holdout), "steps": 0}
    rule_class = RULES[name]
    scratch = rule_class.scratch_slots(cfg)
    population = adapter_population(host, cfg, 1 + scratch)
    rule = rule_class(getattr(cfg.learning, name), host, population)
    grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    family = cfg.grid.families[0] if len(cfg.grid.families) == 1 else None
    steps, start = 0, time.perf_counter()
    try:
        # A scheduled rule's rate spans the budget, as it spans a run's generations.
        while (elapsed := time.perf_counter() - start) < budget:
            batch = learn_batch(grid, rng, cfg.learning.batch)
            job = LearningJob(0, batch, list(range(1, 1 + scratch)), elapsed / budget, family)
            rule.learn([job], rng)
            steps += 1
        scores = slot_scores(host, population, [0], holdout, tokens)[0]
    finally:
        population.detach()
    return {**summarize(scores, holdout), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="sorting", help="the family the adapter specialises in")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per rule and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default="default", help="ecology preset or YAML file")
    parser.add_argument("--per-cell", type=int, default=100, help="holdout prompts per cell")
    args = parser.parse_args()
    base = load_config(preset_path(args.config), EcologyConfig)
    base.grid.families = [args.family]
    host = load_host(base.host, base.device)
    results: dict[str, list[dict]] = {name: [] for name in NAMES}
    for seed in args.seeds:
        cfg = base.model_copy(update={"seed": seed})
        holdout = holdout_examples(TaskGrid(cfg.grid.families, cfg.grid.difficulties),
                                   args.per_cell, seed)
        for name in NAMES:
            result = run(name, cfg, host, holdout, args.budget)
            results[name].append(result)
            print(f"seed {seed} {name:>8}: accuracy {result['overall']:.3f}", flush=True)
    cells = sorted(results["host"][0]["cell"])
    rows = [
        "| rule | gradients through the host | steps | accuracy | " + " | ".join(cells) + " |",
        "|---|---|---:|---:|" + "---:|" * len(cells),
    ]
    figures = {}
    for name, runs in results.items():
        overall = np.array([r["overall"] for r in runs])
        per_cell = {c: np.array([r["cell"][c] for r in runs]) for c in cells}
        steps = np.mean([r["steps"] for r in runs])
        figures[name] = {
            "overall_mean": float(overall.mean()),
            "overall_std": float(overall.std()),
            "cell": {c: [float(v.mean()), float(v.std())] for c, v in per_cell.items()},
            "steps_mean": float(steps),
        }
        through = "-" if name == "host" else ("no" if RULES[name].gradient_free else "yes")
        row = " | ".join(mean_std(v) for v in per_cell.values())
        rows.append(f"| {name} | {through} | {steps:.0f} | {mean_std(overall)} | {row} |")
    text = (
        f"One adapter specialising in `{args.family}` (difficulties {base.grid.difficulties}), "
        f"{args.budget:.0f} s of wall-clock per rule and seed, {len(args.seeds)} seeds, batch "
        f"{base.learning.batch}, up to {args.per_cell} distinct holdout prompts per cell; "
        "accuracy = exact answers, mean ± std.\n\n" + "\n".join(rows)
    )
    print(text)
    write_result(f"learning_rules_{args.family}", figures, text)


if __name__ == "__main__":
    main()
