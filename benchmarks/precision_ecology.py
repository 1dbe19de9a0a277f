"""An ecology run in bf16 (and `auto`) against the same run in fp32: holdout accuracy and time.

Claim (issue 13): an ecology run in bf16 reaches the fp32 run's holdout accuracy within noise
(3 seeds) in less time. Each seed runs the preset once per precision (the order rotates from seed
to seed so drift on a shared machine hits all alike); each run is scored on the same
deduplicated holdout by its own host (bf16 greedy answers are verified against fp32 at near
ties, hosts/verified.py). Time is the process's CPU time by default (`--clock cpu`, one torch
thread: waiting for a core of the shared machine does not count), split by phase (foraging's
generation, learning, assimilation's probes, the rest) to show which part the precision moves.

Run: python benchmarks/precision_ecology.py [--config debug] [--generations N] [--seeds 0 1 2]
     [--precisions fp32 bf16 auto] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from _common import CLOCKS, write_result

from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import holdout_examples, summarize
from evolora.ecology.loop import Ecology
from evolora.ecology.phases import assimilation, foraging, learning
from evolora.hosts import load_host
from evolora.tasks import TaskGrid
from evolora.telemetry import load_config
from evolora.telemetry.rundir import RunDir

PRECISIONS = ("fp32", "bf16", "auto")
# The phases timed on their own (module, function); everything else of a generation is "other".
PHASES = {"foraging": (foraging, "forage"), "learning": (learning, "learn"),
          "assimilation": (assimilation, "try_assimilation")}


@contextmanager
def phase_clock(clock: Callable[[], float]) -> Iterator[dict[str, float]]:
    """Inside the block, every call of a timed phase adds its seconds to the yielded dict."""
    spent = dict.fromkeys(PHASES, 0.0)
    originals = {name: getattr(module, fn) for name, (module, fn) in PHASES.items()}

    def timed(name: str, original: Callable) -> Callable:
        def run(*args, **kwargs):
            start = clock()
            try:
                return original(*args, **kwargs)
            finally:
                spent[name] += clock() - start
        return run

    for name, (module, fn) in PHASES.items():
        setattr(module, fn, timed(name, originals[name]))
    try:
        yield spent
    finally:
        for name, (module, fn) in PHASES.items():
            setattr(module, fn, originals[name])


def run_once(cfg, precision: str, holdout, clock: Callable[[], float]) -> dict:
    """One full run of `cfg` on a host in `precision`: seconds learning (per phase), seconds
    scoring, the precision the host chose, and the routed colony's holdout summary."""
    host = load_host(cfg.host, "cpu", precision)
    cfg = cfg.model_copy(deep=True)
    cfg.evaluation.every = 10**6  # one evaluation, at the end, on the shared holdout
    with tempfile.TemporaryDirectory() as root:
        ecology = Ecology.start(cfg, host, RunDir.create(root, cfg, name="ecology"))
        with phase_clock(clock) as phases:
            start = clock()
            while not ecology.finished:
                ecology.step()
            learning_s = clock() - start
        ecology.holdout = holdout
        start = clock()
        ecology.evaluate()
        scoring = clock() - start
        phases["other"] = learning_s - sum(phases.values())
        result = {**summarize(ecology.last_scores["routed"], holdout),
                  "host": summarize(ecology.last_scores["host"], holdout)["overall"],
                  "generations": ecology.generation, "merges": ecology.merges,
                  "learn_seconds": learning_s, "score_seconds": scoring,
                  "phase_seconds": phases, "host_precision": host.precision.record(),
                  "verify_stats": vars(host.verify_stats).copy()}
        ecology.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="debug", help="ecology preset or YAML file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--generations", type=int, default=None,
                        help="override the preset's generations")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS[:2]),
                        choices=PRECISIONS, help="the first is the reference (fp32)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                        help="cpu: the process's CPU time (meant for --threads 1); wall: elapsed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    base = load_config(preset_path(args.config), EcologyConfig)
    if args.generations is not None:
        base = base.model_copy(update={"generations": args.generations})
    runs: dict[str, list[dict]] = {p: [] for p in args.precisions}
    for index, seed in enumerate(args.seeds):
        cfg = base.model_copy(update={"seed": seed}, deep=True)
        grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
        holdout = holdout_examples(grid, cfg.evaluation.per_cell, seed,
                                   cfg.splits.selection_fraction)
        shift = index % len(args.precisions)
        for precision in args.precisions[shift:] + args.precisions[:shift]:
            result = run_once(cfg, precision, holdout, clock)
            runs[precision].append(result)
            print(f"seed {seed} {precision}: accuracy {result['overall']:.3f} (host "
                  f"{result['host']:.3f}), learning {result['learn_seconds']:.1f} s "
                  f"({', '.join(f'{k} {v:.1f}' for k, v in result['phase_seconds'].items())}), "
                  f"scoring {result['score_seconds']:.1f} s", flush=True)
    write_result("precision_ecology", *tables(base, args, runs))


def tables(base, args, runs) -> tuple[dict, str]:
    """The figures and the markdown of the comparison (the first precision is the reference)."""
    def mean_std(values):
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    reference = args.precisions[0]
    summary, speedups, gaps = {}, {}, {}
    for precision, results in runs.items():
        summary[precision] = {
            "accuracy": mean_std([r["overall"] for r in results]),
            "host_accuracy": mean_std([r["host"] for r in results]),
            "learn_seconds": mean_std([r["learn_seconds"] for r in results]),
            "score_seconds": mean_std([r["score_seconds"] for r in results]),
            "phase_seconds": {k: mean_std([r["phase_seconds"][k] for r in results])
                              for k in results[0]["phase_seconds"]},
            "chosen": sorted({r["host_precision"]["precision"] + "/"
                              + r["host_precision"]["precision_generation"] for r in results}),
        }
        pairs = list(zip(runs[reference], results, strict=True))
        speedups[precision] = {
            "run": [f["learn_seconds"] / b["learn_seconds"] for f, b in pairs],
            "run + scoring": [(f["learn_seconds"] + f["score_seconds"])
                              / (b["learn_seconds"] + b["score_seconds"]) for f, b in pairs],
            "scoring": [f["score_seconds"] / b["score_seconds"] for f, b in pairs],
            **{k: [f["phase_seconds"][k] / b["phase_seconds"][k] for f, b in pairs]
               for k in results[0]["phase_seconds"]}}
        gaps[precision] = [b["overall"] - f["overall"] for f, b in pairs]
    n = runs[reference][0]["n"]
    clock_name = ("CPU time of the process (one torch thread)" if args.clock == "cpu"
                  else "wall-clock time")
    figures = {"config": args.config, "seeds": args.seeds, "clock": args.clock, "runs": runs,
               "summary": summary, "speedup_per_seed": speedups, "accuracy_gap_per_seed": gaps,
               "holdout_prompts": n}
    phases = list(runs[reference][0]["phase_seconds"])
    rows = [f"| {p} ({', '.join(s['chosen'])}) | {s['accuracy'][0]:.3f} ± "
            f"{s['accuracy'][1]:.3f} | {s['host_accuracy'][0]:.3f} | {s['learn_seconds'][0]:.1f} ± "
            f"{s['learn_seconds'][1]:.1f} | "
            + " | ".join(f"{s['phase_seconds'][k][0]:.1f}" for k in phases)
            + f" | {s['score_seconds'][0]:.1f} |" for p, s in summary.items()]
    # A phase that took under half a second in the reference runs gives no meaningful ratio.
    timed = [k for k in phases if summary[reference]["phase_seconds"][k][0] >= 0.5]
    ratio_rows = [f"| {p} | " + " | ".join(
        ", ".join(f"{x:.2f}x" for x in speedups[p][k])
        for k in ["run", *timed, "scoring", "run + scoring"])
        + f" | {', '.join(f'{g:+.3f}' for g in gaps[p])} |"
        for p in args.precisions[1:]]
    table = "\n".join([
        f"Ecology preset `{args.config}` ({base.generations} generations), seeds {args.seeds}, "
        "one run per seed and precision (order rotating by seed), 1 thread; each run scored "
        f"on the same holdout ({n} prompts) by its own host. Seconds are {clock_name}; the "
        "precision column names what the host ran (batched forwards / generation). run = all "
        "generations (learning's share split into its phases: foraging's episodes, the learning "
        "rule's steps, assimilation's probes, the rest); scoring = the final holdout "
        "evaluation.",
        "",
        "| precision (forwards/generation) | routed colony holdout accuracy | host | run s | "
        + " | ".join(f"{k} s" for k in phases) + " | scoring s |",
        "|---|---:|---:|---:|" + "---:|" * len(phases) + "---:|",
        *rows,
        "",
        f"Per seed, {reference} time / other precision's time (above 1: faster than "
        f"{reference}), and the accuracy gap to {reference}:",
        "",
        "| precision | run | " + " | ".join(timed) + " | scoring | run + scoring | accuracy gap |",
        "|---|---|" + "---|" * len(timed) + "---|---|---|",
        *ratio_rows,
        "",
        "Measured on 2 cores shared with other work"
        + (": CPU time does not count waiting for a core, but contention for caches and memory "
           "remains." if args.clock == "cpu" else ": seconds drift, the per-seed ratios hold."),
    ])
    return figures, table


if __name__ == "__main__":
    main()
