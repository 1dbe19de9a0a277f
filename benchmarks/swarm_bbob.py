"""Swarm vs Optuna TPE, Optuna CMA-ES and random search on COCO's bbob suite (`cocoex`).

Per (function, dimension, instance, seed) each method gets 100 x dimension evaluations; the figure
is the final log10 regret (f_best - f_opt, floored at 1e-8). Per function the medians over
dimensions x instances x seeds are compared: the swarm is better / tied / worse than a baseline
when its median is lower / within 0.1 / higher (in log10 regret); the same counts are also given
per dimension (medians over instances x seeds). `--ablations` repeats the swarm with one feature
switched off at a time.

Every finished run is appended to results/NAME.partial.jsonl as it ends (a swarm run under a
hash of the swarm package's source, so a code change re-runs it): a killed benchmark started
again with the same arguments runs only the missing ones.

    python benchmarks/swarm_bbob.py                        # fast default: dims 2 5, instance 1
    python benchmarks/swarm_bbob.py --dims 2 5 10 --instances 1 2 3   # the issue's full suite
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

TIE = 0.1
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


def run_keyed(job: tuple[str, str, int, int]) -> tuple[tuple, tuple[float, float, float]]:
    """(job, `run_one(job)`), for results that arrive out of order."""
    return job, run_one(job)


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
    args = parser.parse_args()
    methods = list(args.methods)
    if args.ablations:
        methods += [f"swarm:{name}" for name in ABLATIONS]
    jobs, keys = [], []
    for fid in args.functions:
        for dim in args.dims:
            for inst in args.instances:
                for seed in range(args.seeds):
                    for method in methods:
                        jobs.append((method, f"bbob:{fid}:{dim}:{inst}", seed, args.budget * dim))
                        keys.append((method, fid, dim))
    cache = {}
    if args.baseline_cache is not None and args.baseline_cache.exists():
        cache = json.loads(args.baseline_cache.read_text())
    code = swarm_source_hash()
    partial = RESULTS_DIR / f"{args.name}.partial.jsonl"
    done: dict[str, tuple] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            record = json.loads(line)
            if record["code"] in (None, code):
                done[record["key"]] = tuple(record["result"])

    def key(job: tuple) -> str:
        return "|".join(map(str, job))

    todo = [job for job in jobs if key(job) not in cache and key(job) not in done]
    RESULTS_DIR.mkdir(exist_ok=True)
    with ProcessPoolExecutor(args.jobs) as pool, partial.open("a") as out:
        futures = [pool.submit(run_keyed, job) for job in todo]
        for future in as_completed(futures):
            job, result = future.result()
            done[key(job)] = result
            swarm = job[0].startswith("swarm")
            row = {"key": key(job), "code": code if swarm else None, "result": list(result)}
            out.write(json.dumps(row) + "\n")
            out.flush()
    results = [done[key(job)] if key(job) in done else tuple(cache[key(job)]) for job in jobs]
    if args.baseline_cache is not None:
        cache.update(
            {key(job): list(done[key(job)]) for job in todo if not job[0].startswith("swarm")}
        )
        args.baseline_cache.write_text(json.dumps(cache))
    regrets: dict[str, dict[int, list[float]]] = {m: {} for m in methods}
    per_dim: dict[str, dict[int, list[float]]] = {m: {} for m in methods}
    per_dim_fid: dict[str, dict[tuple[int, int], list[float]]] = {m: {} for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    overhead: dict[str, list[float]] = {m: [] for m in methods}
    for (method, fid, dim), (regret, total, per_trial) in zip(keys, results, strict=False):
        regrets[method].setdefault(fid, []).append(regret)
        per_dim[method].setdefault(dim, []).append(regret)
        per_dim_fid[method].setdefault((dim, fid), []).append(regret)
        if total is not None:  # cached baseline runs keep only their regret
            seconds[method].append(total)
            overhead[method].append(per_trial)
    medians = {m: {f: float(np.median(v)) for f, v in regrets[m].items()} for m in methods}
    figures: dict = {
        "medians": medians,
        "tie": TIE,
        "shared_machine": True,
        "runs_from_cache": len(jobs) - len(todo),
        "dims": args.dims,
        "instances": args.instances,
        "seeds": args.seeds,
        "budget": f"{args.budget} x dimension",
    }
    lines = [
        "Median final log10 regret per function (lower is better; ties within "
        f"{TIE}); dims {args.dims}, instances {args.instances}, {args.seeds} seeds, "
        f"budget {args.budget} x dim. Machine shared with other work while measuring.",
        "",
        "| f | " + " | ".join(methods) + " |",
        "|---" * (len(methods) + 1) + "|",
    ]
    for fid in args.functions:
        lines.append(f"| f{fid} | " + " | ".join(f"{medians[m][fid]:.2f}" for m in methods) + " |")
    lines += ["", "| swarm vs | better | tied | worse | share better |", "|---|---|---|---|---|"]
    counts = {}
    for other in methods[1:]:
        diff = [medians["swarm"][f] - medians[other][f] for f in args.functions]
        better = sum(d < -TIE for d in diff)
        worse = sum(d > TIE for d in diff)
        counts[other] = {"better": better, "tied": len(diff) - better - worse, "worse": worse}
        lines.append(
            f"| {other} | {better} | {len(diff) - better - worse} | {worse} | "
            f"{better / len(diff):.0%} |"
        )
    lines += ["", "| dim | swarm vs | better | tied | worse | share better |"]
    lines.append("|---|---|---|---|---|---|")
    counts_per_dim: dict[int, dict[str, dict[str, int]]] = {}
    for dim in args.dims:
        for other in methods[1:]:
            diff = [
                float(np.median(per_dim_fid["swarm"][(dim, f)]))
                - float(np.median(per_dim_fid[other][(dim, f)]))
                for f in args.functions
            ]
            better, worse = sum(d < -TIE for d in diff), sum(d > TIE for d in diff)
            tied = len(diff) - better - worse
            counts_per_dim.setdefault(dim, {})[other] = {
                "better": better,
                "tied": tied,
                "worse": worse,
            }
            lines.append(
                f"| {dim} | {other} | {better} | {tied} | {worse} | {better / len(diff):.0%} |"
            )
    suite_median = {m: float(np.median(list(medians[m].values()))) for m in methods}
    lines += [
        "",
        "| method | median over suite | mean seconds / run | median s per ask+tell |",
        "|---|---|---|---|",
    ]

    def timing(m: str) -> str:
        if not seconds[m]:
            return "n/a (cached run) | n/a"
        return f"{np.mean(seconds[m]):.2f} | {np.median(overhead[m]) * 1e3:.2f} ms"

    for m in methods:
        lines.append(f"| {m} | {suite_median[m]:.2f} | {timing(m)} |")
    figures.update(
        counts=counts,
        counts_per_dim=counts_per_dim,
        suite_median=suite_median,
        overhead_ms={m: float(np.median(overhead[m]) * 1e3) for m in methods if overhead[m]},
        per_dim_median={
            m: {d: float(np.median(v)) for d, v in per_dim[m].items()} for m in methods
        },
    )
    if not args.no_overhead:
        cost = ask_tell_overhead()
        figures["overhead"] = cost
        lines += [
            "",
            f"Overhead per ask + tell over {cost['trials']} trials in {cost['dim']} "
            f"dimensions (objective excluded, median): swarm {cost['swarm_ms']:.2f} ms "
            f"(last 100 trials {cost['swarm_last100_ms']:.2f} ms), Optuna TPE over its first "
            f"{cost['tpe_trials']} trials {cost['tpe_ms']:.2f} ms (last 100 of those "
            f"{cost['tpe_last100_ms']:.2f} ms); target <= 5 ms.",
        ]
    table = "\n".join(lines)
    print(table)
    write_result(args.name, figures, table)


if __name__ == "__main__":
    main()
