"""Swarm vs Optuna TPE, Optuna CMA-ES and random search on COCO's bbob suite (`cocoex`).

Per (function, dimension, instance, seed) each method gets 100 x dimension evaluations; the figure
is the final log10 regret (f_best - f_opt, floored at 1e-8). Per function the medians over
dimensions x instances x seeds are compared: the swarm is better / tied / worse than a baseline
when its median is lower / within 0.1 / higher (in log10 regret); the same counts are also given
per dimension and per (function, dimension, instance) problem, with the issue's targets checked
(`swarm_bbob_summary.py`). `--ablations` repeats the swarm with one feature switched off at a time.

Every finished run is appended to a JSONL run store (`--runs`, by default
results/NAME.partial.jsonl) as it ends, a swarm run under a hash of the swarm package's source
(so a code change re-runs it): a killed benchmark started again with the same arguments runs only
the missing ones, and parts of one suite measured with the same `--runs` are summarised together
by `--combine`, which runs nothing and names the problems whose runs are missing.

    python benchmarks/swarm_bbob.py                        # fast default: dims 2 5, instance 1
    python benchmarks/swarm_bbob.py --dims 2 5 10 --instances 1 2 3   # the issue's full suite
    python benchmarks/swarm_bbob.py --dims 2 5 10 --instances 1 2 3 --combine \\
        --runs benchmarks/results/swarm_bbob_runs.jsonl --name swarm_bbob_suite   # parts, merged
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, write_result
from swarm_bbob_summary import TIE, load_runs, missing_groups, run_key, summarise

ABLATIONS = {
    "no-heatmap-overlap": {"supervisor": {"heatmap": False, "overlap": False}},
    "no-messages": {"messages": False},
    "no-cloning": {"supervisor": {"cloning": False}},
    "no-reseed": {"supervisor": {"diversity_reseed": False}},
    "no-managers": {"manager": {"every": 10**9}},
}


def swarm_config(seed: int, ablation: str | None):
    """The default swarm config with one ablation applied."""
    from evolora.swarm.config import SwarmConfig

    data = SwarmConfig(seed=seed).model_dump()
    for key, value in (ABLATIONS.get(ablation) or {}).items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    return SwarmConfig.model_validate(data)


def run_one(job: tuple[str, str, int, int]) -> tuple[float, float, float]:
    """(final log10 regret, seconds, seconds per ask+tell excluding the objective) of a method."""
    method, spec, seed, budget = job
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from evolora.swarm.objectives import load_objective

    objective = load_objective(spec)
    spent = [0.0]

    def timed(params):
        start = time.perf_counter()
        value = objective(params)
        spent[0] += time.perf_counter() - start
        return value

    start = time.perf_counter()
    if method.startswith("swarm"):
        from evolora.swarm.study import Swarm

        ablation = method.split(":", 1)[1] if ":" in method else None
        swarm = Swarm(objective.space, swarm_config(seed, ablation))
        best = swarm.optimize(timed, budget).value
    else:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = {
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        }[method]()
        study = optuna.create_study(sampler=sampler)
        dim = len(objective.space)
        study.optimize(
            lambda t: timed({f"x{i}": t.suggest_float(f"x{i}", -5.0, 5.0) for i in range(dim)}),
            n_trials=budget,
        )
        best = study.best_value
    total = time.perf_counter() - start
    return math.log10(max(best, 1e-8)), total, (total - spent[0]) / budget


def swarm_source_hash() -> str:
    """A short hash of the swarm package's source (what a cached swarm run was made with)."""
    import evolora.swarm

    digest = hashlib.sha256()
    for path in sorted(Path(evolora.swarm.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def parse_job(key: str) -> tuple[str, str, int, int]:
    """The job (method, objective spec, seed, budget) of a run store key."""
    method, spec, seed, budget = key.split("|")
    return method, spec, int(seed), int(budget)


def ask_tell_overhead(trials: int = 1000, dim: int = 10, tpe_trials: int = 300) -> dict[str, float]:
    """Median milliseconds per ask + tell (objective excluded) on a cheap quadratic: the swarm
    over `trials` trials, Optuna's TPE side by side over its first `tpe_trials` (its cost per
    trial grows with the trials it has seen, so this understates it)."""
    import optuna

    from evolora.swarm import Swarm, SwarmConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {f"x{i}": {"kind": "float", "low": -5.0, "high": 5.0} for i in range(dim)}
    swarm, study = (
        Swarm(space, SwarmConfig(seed=0)),
        optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0)),
    )
    distributions = {name: optuna.distributions.FloatDistribution(-5.0, 5.0) for name in space}
    ours, theirs = [], []
    for _ in range(trials):
        start = time.perf_counter()
        trial = swarm.ask()
        value = sum(v * v for v in trial.params.values())
        swarm.tell(trial, value)
        ours.append(time.perf_counter() - start)
        if len(theirs) == tpe_trials:
            continue
        start = time.perf_counter()
        other = study.ask(distributions)
        study.tell(other, sum(v * v for v in other.params.values()))
        theirs.append(time.perf_counter() - start)
    swarm_ms, tpe_ms = np.median(ours) * 1e3, np.median(theirs) * 1e3
    return {
        "trials": trials,
        "dim": dim,
        "swarm_ms": float(swarm_ms),
        "tpe_ms": float(tpe_ms),
        "swarm_last100_ms": float(np.median(ours[-100:]) * 1e3),
        "tpe_trials": tpe_trials,
        "tpe_last100_ms": float(np.median(theirs[-100:]) * 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, nargs="+", default=list(range(1, 25)))
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--instances", type=int, nargs="+", default=[1])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--budget", type=int, default=100, help="evaluations per dimension (the issue's: 100)"
    )
    parser.add_argument("--methods", nargs="+", default=["swarm", "tpe", "cmaes", "random"])
    parser.add_argument("--ablations", action="store_true", help="add one swarm run per ablation")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--name", default="swarm_bbob")
    parser.add_argument(
        "--no-overhead", action="store_true", help="skip the ask + tell overhead measurement"
    )
    parser.add_argument(
        "--baseline-cache",
        type=Path,
        default=None,
        help="JSON of earlier baseline runs (tpe, cmaes, random: seeded, so deterministic) to "
        "reuse; runs missing from it are made and added",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="JSONL keeping every finished run (default results/NAME.partial.jsonl); parts of "
        "one suite share it",
    )
    parser.add_argument(
        "--combine",
        action="store_true",
        help="run nothing: report over every (function, dim, instance) asked for whose runs "
        "are all in --runs / --baseline-cache, naming the ones that are not",
    )
    args = parser.parse_args()
    methods = list(args.methods)
    if args.ablations:
        methods += [f"swarm:{name}" for name in ABLATIONS]
    if "swarm" not in methods:
        raise SystemExit("--methods must include swarm: every figure compares the swarm")
    wanted = [(f, d, i) for f in args.functions for d in args.dims for i in args.instances]

    def keys_of(cell: tuple[int, int, int]) -> list[str]:
        fid, dim, inst = cell
        return [
            run_key(m, fid, dim, inst, seed, args.budget * dim)
            for m in methods
            for seed in range(args.seeds)
        ]

    cache = {}
    if args.baseline_cache is not None and args.baseline_cache.exists():
        cache = json.loads(args.baseline_cache.read_text())
    code = swarm_source_hash()
    store = args.runs or RESULTS_DIR / f"{args.name}.partial.jsonl"
    done = load_runs(store, code)
    known = {**{k: tuple(v) for k, v in cache.items()}, **done}
    todo = [] if args.combine else [k for c in wanted for k in keys_of(c) if k not in known]
    RESULTS_DIR.mkdir(exist_ok=True)
    with ProcessPoolExecutor(args.jobs) as pool, store.open("a") as out:
        futures = {pool.submit(run_one, parse_job(k)): k for k in todo}
        for future in as_completed(futures):
            key, result = futures[future], future.result()
            known[key] = result
            row = {
                "key": key,
                "code": code if key.startswith("swarm") else None,
                "result": list(result),
            }
            out.write(json.dumps(row) + "\n")
            out.flush()
    if args.baseline_cache is not None and todo:
        cache.update({k: list(known[k]) for k in todo if not k.startswith("swarm")})
        args.baseline_cache.write_text(json.dumps(cache))
    cells = [c for c in wanted if all(k in known for k in keys_of(c))]
    if not cells:
        raise SystemExit(f"no (function, dim, instance) has all its runs in {store}")
    results = {}
    for fid, dim, inst in cells:
        for m in methods:
            results[(m, fid, dim, inst)] = [
                known[run_key(m, fid, dim, inst, s, args.budget * dim)] for s in range(args.seeds)
            ]
    header = (
        f"Final log10 regret (f_best - f_opt, floored at 1e-8; lower is better, ties within "
        f"{TIE}) on {len(cells)} (function, dimension, instance) problems: functions "
        f"{args.functions[0]}-{args.functions[-1]} asked, dims {args.dims}, instances "
        f"{args.instances}, {args.seeds} seeds, budget {args.budget} x dim. "
        f"{len(todo)} runs made now, the rest from the run store and baseline cache. "
        "Machine shared with other work while measuring."
    )
    gaps = missing_groups(wanted, cells)
    if gaps:
        header += " " + gaps
    figures, table = summarise(results, methods, header)
    figures.update(
        shared_machine=True,
        runs_made=len(todo),
        seeds=args.seeds,
        budget=f"{args.budget} x dimension",
        not_measured=gaps,
    )
    if not args.no_overhead and not args.combine:
        cost = ask_tell_overhead()
        figures["overhead"] = cost
        table += (
            f"\n\nOverhead per ask + tell over {cost['trials']} trials in {cost['dim']} "
            f"dimensions (objective excluded, median): swarm {cost['swarm_ms']:.2f} ms "
            f"(last 100 trials {cost['swarm_last100_ms']:.2f} ms), Optuna TPE over its first "
            f"{cost['tpe_trials']} trials {cost['tpe_ms']:.2f} ms (last 100 of those "
            f"{cost['tpe_last100_ms']:.2f} ms); target <= 5 ms."
        )
    print(table)
    write_result(args.name, figures, table)


if __name__ == "__main__":
    main()
