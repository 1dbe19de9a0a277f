"""Ecology vs baselines at equal wall-clock: holdout accuracy per family, mean ± std over seeds.

Methods, each given the same wall-clock budget on the same host and scored on the same
deduplicated holdout (the holdout split, never trained on, `evaluation.per_cell` prompts a cell):
  host          the frozen host
  monolith      one adapter trained by the default rule (backprop, Adam) on the same task stream
                (the colony's learning prompts, every cell alike): no colony
  ecology       the full ecology with the preset's rules (its routed colony answers)
  backprop      the ecology with rules [backprop]
  es, hebbian   the ecology with one gradient-free rule
  compose       the ecology with [compose] only, over the preset's gene pool (`genes.pool`);
                without a pool it has nothing to recombine and is skipped
  no_assim      the ecology with assimilation off
  no_guard      the ecology with the diversity guard off
  no_routing    the same ecology run as `ecology`, scored through its merged adapter alone
                (no per-cell routing; needs `ecology` in the methods)
  no_recombination  offspring keep their parent's niche and adapter (no colonising from the
                gene pool, no narrowing to a cell: specialisation.offspring: parent)
  no_niches     the ecology with generalist organelles (specialisation.niche: none)
  no_ticket     no generation ticket (energy.m: 0)
  no_cost       episodes and learning cost no energy (energy.cost_scale: 0)
  no_failure_cost  a failure costs what a success does (environment.failure_cost_multiplier: 1)
  no_topup      no energy top-up for high-ROI candidates (energy_topup_roi_bonus: 0)
  no_redistribution  the Gini guard never fires (diversity.energy_gini_cap: 1); species cap kept
  no_species_cap  any lineage may grow (diversity.species_share_cap: 1); Gini guard kept
Every ecology row also records what the mechanisms did (births, deaths, gating counters), so an
ablation shows whether removing a mechanism changed the colony's course, not only its score.

python benchmarks/ecology_vs_baselines.py [--budget 300] [--clock wall|cpu] [--seeds 0 1 2]
    [--methods ...] [--tag T]
(a budget other than 300 s, the cpu clock, or a tag, writes its own results section)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import CLOCKS, mean_std, tagged, write_result

from evolora.ecology.colony import adapter_population
from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import (
    exact_answers,
    holdout_examples,
    paired_difference,
    slot_scores,
    summarize,
)
from evolora.ecology.learning import LearningJob
from evolora.ecology.learning.backprop import Backprop
from evolora.ecology.loop import Ecology
from evolora.hosts import load_host
from evolora.tasks import TaskGrid
from evolora.telemetry.config_io import load_config
from evolora.telemetry.rundir import RunDir

DEFAULT_BUDGET = 300.0
METHODS = (
    "host", "monolith", "ecology", "backprop", "es", "hebbian", "compose",
    "no_assim", "no_guard", "no_routing", "no_recombination", "no_niches",
    "no_ticket", "no_cost", "no_failure_cost", "no_topup", "no_redistribution", "no_species_cap",
)
ABLATIONS = METHODS[METHODS.index("no_assim"):]


CLOCK_WORDS = {"wall": "wall-clock", "cpu": "this process's CPU time"}


class Budget:
    """The seconds a method may spend, on one clock: wall-clock, or this process's CPU time (on a
    shared machine, time spent waiting for a core then does not count against the method)."""

    def __init__(self, seconds: float, clock: str) -> None:
        self.seconds, self.clock = seconds, CLOCKS[clock]
        self.started = self.clock()

    def start(self) -> None:
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def fraction(self) -> float:
        """The share of the budget spent so far."""
        return self.elapsed() / self.seconds


def learn_batch(grid: TaskGrid, rng: np.random.Generator, n: int) -> list:
    """n train-split (learning-role) examples drawn uniformly over the grid's cells."""
    return [grid.sample(rng, split="train") for _ in range(n)]


def scores_of(host, population, slot, holdout, cfg) -> list[float]:
    return slot_scores(host, population, [slot], holdout, cfg.grid.max_new_tokens)[0]


def run_host(cfg, host, holdout, budget):
    return scores_of(host, None, -1, holdout, cfg), {}


def run_monolith(cfg, host, holdout, budget):
    """The same rule on the same stream, one adapter for every cell (its schedule spans the
    budget)."""
    population = adapter_population(host, cfg, 1)
    rule = Backprop(cfg.learning.backprop, host, population)
    grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    steps = 0
    budget.start()
    try:
        while (spent := budget.fraction()) < 1:
            batch = learn_batch(grid, rng, cfg.learning.batch)
            rule.learn([LearningJob(0, batch, [], spent)], rng)
            steps += 1
        return scores_of(host, population, 0, holdout, cfg), {"steps": steps}
    finally:
        population.detach()


def run_ecology(cfg, host, holdout, budget):
    cfg = cfg.model_copy(deep=True)
    cfg.evaluation.every = 10**6  # no evaluations inside the budget
    with tempfile.TemporaryDirectory() as root:
        ecology = Ecology.start(cfg, host, RunDir.create(root, cfg, name="ecology"))
        budget.start()
        while budget.fraction() < 1:
            ecology.step()
            # The run's length in generations is what the budget affords at the pace so far, so
            # that a learning-rate schedule spans the budget (and the run never finishes early,
            # which would start an evaluation inside the budget).
            pace = budget.elapsed() / ecology.generation
            ecology.config.generations = max(
                ecology.generation + 2, round(budget.seconds / pace))
        ecology.holdout = holdout
        report = ecology.evaluate()
        routed = report["cells_routed_to_organelles"]
        extra = {"generations": ecology.generation, "merges": ecology.merges,
                 "cells_routed_to_organelles": routed, **what_happened(ecology),
                 "merged_scores": ecology.last_scores["merged"]}
        scores = ecology.last_scores["routed"]
        ecology.close()
    return scores, extra


def what_happened(ecology) -> dict:
    """The colony's course: organelles born and died, and every gating counter."""
    summaries = ecology.run.read_stream("gen_summaries")
    return {
        "born": sum(s["population/born"] for s in summaries),
        "died": sum(s["population/died"] for s in summaries),
        "gating": dict(ecology.gating),
    }


def course(runs: list[dict]) -> str:
    """Mean births, deaths, merges and non-zero gating counters of an ecology method's runs."""
    counts = {"born": [r["born"] for r in runs], "died": [r["died"] for r in runs],
              "merges": [r["merges"] for r in runs]}
    for key in sorted({k for r in runs for k in r["gating"]}):
        counts[key] = [r["gating"].get(key, 0) for r in runs]
    return ", ".join(f"{k} {np.mean(v):.3g}" for k, v in counts.items() if np.mean(v) > 0)


def _with(cfg, **sections):
    cfg = cfg.model_copy(deep=True)
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(cfg, section), key, value)
    return cfg


RUNNERS = {
    "host": run_host,
    "monolith": run_monolith,
    "ecology": run_ecology,
    "backprop": lambda c, h, x, b: run_ecology(_with(c, learning={"rules": ["backprop"]}), h, x, b),
    "es": lambda c, h, x, b: run_ecology(_with(c, learning={"rules": ["es"]}), h, x, b),
    "hebbian": lambda c, h, x, b: run_ecology(_with(c, learning={"rules": ["hebbian"]}), h, x, b),
    "compose": lambda c, h, x, b: run_ecology(_with(c, learning={"rules": ["compose"]}), h, x, b),
    "no_assim": lambda c, h, x, b: run_ecology(
        _with(c, assimilation_tuning={"enabled": False}), h, x, b),
    "no_guard": lambda c, h, x, b: run_ecology(_with(c, diversity={"enabled": False}), h, x, b),
    "no_recombination": lambda c, h, x, b: run_ecology(
        _with(c, specialisation={"offspring": "parent"}), h, x, b),
    "no_niches": lambda c, h, x, b: run_ecology(
        _with(c, specialisation={"niche": "none"}), h, x, b),
    "no_ticket": lambda c, h, x, b: run_ecology(_with(c, energy={"m": 0.0}), h, x, b),
    "no_cost": lambda c, h, x, b: run_ecology(_with(c, energy={"cost_scale": 0.0}), h, x, b),
    "no_failure_cost": lambda c, h, x, b: run_ecology(
        _with(c, environment={"failure_cost_multiplier": 1.0}), h, x, b),
    "no_topup": lambda c, h, x, b: run_ecology(
        _with(c, assimilation_tuning={"energy_topup_roi_bonus": 0.0}), h, x, b),
    "no_redistribution": lambda c, h, x, b: run_ecology(
        _with(c, diversity={"energy_gini_cap": 1.0}), h, x, b),
    "no_species_cap": lambda c, h, x, b: run_ecology(
        _with(c, diversity={"species_share_cap": 1.0}), h, x, b),
}


def run_seed(cfg, host, methods, args) -> dict[str, dict]:
    """Every method's result on one seed's holdout (with its paired difference from the host)."""
    grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    holdout = holdout_examples(
        grid, cfg.evaluation.per_cell, cfg.seed, cfg.splits.selection_fraction
    )
    done: dict[str, dict] = {}
    host_scores = merged = None  # merged: the ecology run's merged-adapter scores (no_routing)
    for method in methods:
        t0 = time.perf_counter()
        if method == "no_routing":
            if merged is None:
                raise SystemExit("no_routing is scored from the ecology run: add `ecology`.")
            scores, extra = merged, {}
        else:
            scores, extra = RUNNERS[method](cfg, host, holdout, Budget(args.budget, args.clock))
        merged_scores = extra.pop("merged_scores", None)
        if method == "ecology":
            merged = merged_scores
        if method == "host":
            host_scores = scores
        result = {**summarize(scores, holdout), **extra, "seconds": time.perf_counter() - t0}
        if host_scores is not None:
            result["vs_host"] = paired_difference(
                exact_answers(scores), exact_answers(host_scores))
        done[method] = result
        print(f"seed {cfg.seed} {method:>10}: accuracy {result['overall']:.3f} "
              f"({result['seconds']:.0f}s)", flush=True)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET, help="seconds per method and seed"
    )
    parser.add_argument(
        "--clock", choices=list(CLOCKS), default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (for a shared machine; run with "
        "one thread, e.g. OMP_NUM_THREADS=1, so that CPU seconds are core-seconds of one core)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default="default", help="ecology preset or YAML file")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--tag", default="", help="suffix of the results section, e.g. `ablations` for a run of "
        "some methods that should not replace the main table"
    )
    parser.add_argument(
        "--partial-dir", default="runs/benchmarks", help="where each finished seed's results "
        "are kept: a killed run, or one seed per process, resumes from them, running only the "
        "methods a seed lacks (and the host, which every paired difference needs); delete a "
        "method's entry there to measure it again"
    )
    args = parser.parse_args()
    base = load_config(preset_path(args.config), EcologyConfig)
    methods = [m for m in args.methods if m != "compose" or base.genes.pool]
    # Runs at another budget keep their own section: a figure is compared at its own budget.
    name = "ecology_vs_baselines" + ("" if args.budget == DEFAULT_BUDGET else f"_{args.budget:g}s")
    name += "_cpu" if args.clock == "cpu" else ""
    name = tagged(name, args.tag)
    host = load_host(base.host, base.device)
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for seed in args.seeds:
        partial = Path(args.partial_dir) / f"{name}_{Path(args.config).stem}_seed{seed}.json"
        done = json.loads(partial.read_text()) if partial.exists() else {}
        missing = [m for m in methods if m not in done or m == "host"]
        if "no_routing" in missing and "ecology" not in missing:
            missing.insert(missing.index("no_routing"), "ecology")  # scored from its run
        if any(m != "host" for m in missing):
            kept = [m for m in done if m not in missing]
            print(f"seed {seed}: {', '.join(kept) or 'nothing'} kept from {partial}", flush=True)
            cfg = base.model_copy(update={"seed": seed})
            done.update(run_seed(cfg, host, missing, args))
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(done))
        for method in methods:
            results[method].append(done[method])
    write_result(name, *tables(base, args, results))


def tables(base, args, results) -> tuple[dict, str]:
    """The figures and the markdown text: overall and per-family accuracy, gains over the host."""
    families = base.grid.families
    rows = [
        "| method | mean over grid | vs host (points, 95% interval, seed 0) | "
        + " | ".join(families) + " |",
        "|---|---:|---|" + "---:|" * len(families),
    ]
    figures = {}
    for method, runs in results.items():
        overall = np.array([r["overall"] for r in runs])
        per_family = {f: np.array([r["family"][f] for r in runs]) for f in families}
        figures[method] = {
            "overall_mean": float(overall.mean()),
            "overall_std": float(overall.std()),
            "family": {f: [float(v.mean()), float(v.std())] for f, v in per_family.items()},
            "runs": runs,
        }
        vs = runs[0].get("vs_host")
        interval = (f"{100 * vs['mean']:+.1f} [{100 * vs['ci95'][0]:+.1f}, "
                    f"{100 * vs['ci95'][1]:+.1f}]") if vs else "-"
        cells = " | ".join(mean_std(v) for v in per_family.values())
        rows.append(f"| {method} | {mean_std(overall)} | {interval} | {cells} |")
    mean = {m: f["overall_mean"] for m, f in figures.items()}
    notes = []
    if {"ecology", "host"} <= mean.keys():
        notes.append(f"ecology - frozen host: {100 * (mean['ecology'] - mean['host']):+.1f} "
                     "points (target >= +20)")
    if {"ecology", "monolith"} <= mean.keys():
        notes.append(f"ecology - monolith: {100 * (mean['ecology'] - mean['monolith']):+.1f} "
                     "points (target >= +3)")
    for method in ABLATIONS:
        if {"ecology", method} <= mean.keys():
            notes.append(f"ablation {method}: {100 * (mean[method] - mean['ecology']):+.1f} "
                         "points against the full ecology")
    courses = [f"| {m} | {course(runs)} |" for m, runs in results.items() if "born" in runs[0]]
    if courses:
        notes.append("what the colony did (mean per seed):\n\n| method | course |\n|---|---|\n"
                     + "\n".join(courses))
    text = (
        f"Holdout accuracy (exact answers), {len(args.seeds)} seeds, {args.budget:.0f} s of "
        f"{CLOCK_WORDS[args.clock]} per method and seed, grid {families} x difficulties "
        f"{base.grid.difficulties}, up to {base.evaluation.per_cell} distinct holdout prompts "
        "per cell. The ecology rows are its routed colony (cells without a confident organelle "
        "fall back to the merged adapter or the bare host; `cells_routed_to_organelles` in the "
        "JSON says how many did not). Measured while other work shared the 2 cores"
        + (", so each method got about the same share of them in its budget.\n\n"
           if args.clock == "wall" else "; the budget counts the CPU time this process got "
           f"(torch threads: {torch.get_num_threads()}).\n\n")
        + "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)
    )
    print(text)
    return figures, text


if __name__ == "__main__":
    main()
