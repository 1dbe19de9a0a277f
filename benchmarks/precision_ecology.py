"""An ecology run in bf16 against the same run in fp32: holdout accuracy and wall-clock, 3 seeds.

Claim (issue 13): an ecology run in bf16 reaches the fp32 run's holdout accuracy within noise
(3 seeds) in less wall-clock. Each seed runs the preset once per precision (the order alternates
from seed to seed so drift on a shared machine hits both alike); each run is scored on the same
deduplicated holdout by its own host (bf16 greedy answers are verified against fp32 at near
ties, hosts/verified.py).

Run: python benchmarks/precision_ecology.py [--config debug] [--generations N] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from _common import write_result

from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import holdout_examples, summarize
from evolora.ecology.loop import Ecology
from evolora.hosts import load_host
from evolora.tasks import TaskGrid
from evolora.telemetry import load_config
from evolora.telemetry.rundir import RunDir

PRECISIONS = ("fp32", "bf16")


def run_once(cfg, precision: str, holdout) -> dict:
    """One full run of `cfg` on a host in `precision`: seconds learning, seconds scoring, and
    the routed colony's holdout summary."""
    host = load_host(cfg.host, "cpu", precision)
    cfg = cfg.model_copy(deep=True)
    cfg.evaluation.every = 10**6  # one evaluation, at the end, on the shared holdout
    with tempfile.TemporaryDirectory() as root:
        ecology = Ecology.start(cfg, host, RunDir.create(root, cfg, name="ecology"))
        start = time.perf_counter()
        while not ecology.finished:
            ecology.step()
        learning = time.perf_counter() - start
        ecology.holdout = holdout
        start = time.perf_counter()
        ecology.evaluate()
        scoring = time.perf_counter() - start
        result = {**summarize(ecology.last_scores["routed"], holdout),
                  "host": summarize(ecology.last_scores["host"], holdout)["overall"],
                  "generations": ecology.generation, "merges": ecology.merges,
                  "learn_seconds": learning, "score_seconds": scoring}
        ecology.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="debug", help="ecology preset or YAML file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--generations", type=int, default=None,
                        help="override the preset's generations")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = load_config(preset_path(args.config), EcologyConfig)
    if args.generations is not None:
        base = base.model_copy(update={"generations": args.generations})
    runs: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    for index, seed in enumerate(args.seeds):
        cfg = base.model_copy(update={"seed": seed}, deep=True)
        grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
        holdout = holdout_examples(grid, cfg.evaluation.per_cell, seed,
                                   cfg.splits.selection_fraction)
        order = PRECISIONS if index % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            result = run_once(cfg, precision, holdout)
            runs[precision].append(result)
            print(f"seed {seed} {precision}: accuracy {result['overall']:.3f} (host "
                  f"{result['host']:.3f}), learning {result['learn_seconds']:.0f} s, scoring "
                  f"{result['score_seconds']:.0f} s", flush=True)
    write_result("precision_ecology", *tables(base, args, runs))


def tables(base, args, runs) -> tuple[dict, str]:
    """The figures and the markdown of the comparison."""
    def mean_std(values):
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    summary = {}
    for precision, results in runs.items():
        summary[precision] = {
            "accuracy": mean_std([r["overall"] for r in results]),
            "host_accuracy": mean_std([r["host"] for r in results]),
            "learn_seconds": mean_std([r["learn_seconds"] for r in results]),
            "score_seconds": mean_std([r["score_seconds"] for r in results]),
        }
    speedup = [f["learn_seconds"] / b["learn_seconds"]
               for f, b in zip(runs["fp32"], runs["bf16"], strict=True)]
    gaps = [b["overall"] - f["overall"] for f, b in zip(runs["fp32"], runs["bf16"], strict=True)]
    n = runs["fp32"][0]["n"]
    figures = {"config": args.config, "seeds": args.seeds, "runs": runs, "summary": summary,
               "learning_speedup_per_seed": speedup, "accuracy_gap_per_seed": gaps,
               "holdout_prompts": n}
    rows = [f"| {p} | {s['accuracy'][0]:.3f} ± {s['accuracy'][1]:.3f} | "
            f"{s['host_accuracy'][0]:.3f} | {s['learn_seconds'][0]:.0f} ± "
            f"{s['learn_seconds'][1]:.0f} | {s['score_seconds'][0]:.0f} |"
            for p, s in summary.items()]
    table = "\n".join([
        f"Ecology preset `{args.config}` ({base.generations} generations), seeds {args.seeds}, "
        "one run per seed and precision (order alternating by seed), 1 thread; each run scored "
        "on the same holdout by its own host.",
        "",
        "| precision | routed colony holdout accuracy | host | learning seconds | scoring "
        "seconds |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Accuracy gap bf16 - fp32 per seed: {', '.join(f'{g:+.3f}' for g in gaps)} (mean "
        f"{statistics.mean(gaps):+.3f}). Learning wall-clock fp32 / bf16 per seed: "
        f"{', '.join(f'{s:.2f}x' for s in speedup)}. Measured on 2 cores shared with other "
        "work: seconds drift, the per-seed ratios are what holds.",
    ])
    return figures, table


if __name__ == "__main__":
    main()
