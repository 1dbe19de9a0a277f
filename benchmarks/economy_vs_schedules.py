"""Economy vs schedules: one steered LoRA fine-tuning run against the schedules a user would pick.

On PEFT LoRA fine-tuning of the built-in host (a task family or the mixed grid), per seed:
- economy: one run steered by the agent economy (all roles), starting at lr 1e-3;
- grid: 8 constant learning rates, log-spaced 1e-4 .. 3e-2 (8 runs); the best is chosen by its
  mean final validation loss over the seeds;
- cosine: linear warm-up (10 % of the steps) then cosine decay to 0, at the best grid rate;
- trainer: transformers.Trainer with its default arguments (lr 5e-5, linear decay, AdamW);
- pbt: Ray Tune Population Based Training of the lr with 4 members (4 runs; economy_pbt.py);
- ablations (with --part ablations): the economy without the lr search, pheromones, trading,
  anxiety, bursts or the accumulation agent, a single agent steering only the learning rate,
  a search that undoes every missed round (`no_tie`), a rank agent that may prune until the
  end (`late_prune`) and anxiety without the panic at a severe regression (`no_severe`);
  on request the anxiety scenario `bold_start` / `bold_start_no_anxiety` (starting at lr 3e-2,
  with and without anxiety).
Finished runs are cached in results/economy_runs.jsonl, so an interrupted benchmark resumes where it
stopped; economy runs are keyed by a hash of their whole config and of the economy package's
source, so a run of another economy design is never reused. All runs see the same micro-batches
(a function of seed and step) and the same budget of micro-batches; the economy and the fixed
schedules validate every `eval_every` micro-batches and end on their best validated weights, the
Trainer on its last. Validation loss is
on holdout examples, task accuracy (exact answers, greedy) on other holdout examples.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS_DIR, mean_std, write_result

from evolora import economy
from evolora.economy.config import EconomyConfig, Role
from evolora.economy.loop import Job
from evolora.economy.workload import (
    TaskSource,
    chunks,
    encode,
    evaluate_loss,
    peft_model,
    task_accuracy,
)
from evolora.hosts import load_host
from evolora.stats import paired_difference

GRID = [float(x) for x in np.geomspace(1e-4, 3e-2, 8)]
ABLATIONS = {
    "no_search": {"search": {"enabled": False}},
    "no_pheromones": {"pheromones": {"enabled": False}},
    "no_trading": {"market": {"trading": False}},
    "no_anxiety": {"anxiety": {"enabled": False}},
    "no_bursts": {"bursts": {"enabled": False}},
    "lr_only": {"agents": {"roles": ["lr"]}},
    "no_accumulation": {"agents": {"roles": [r.value for r in Role if r is not Role.ACCUMULATION]}},
    "no_tie": {"search": {"tie": 0.0}},
    "late_prune": {"agents": {"prune_recovery": 0.0}},
    "no_severe": {"anxiety": {"severe": 0.0}},
}
# A harder run in which validation regresses (a start at the grid's diverging rate, validated every
# 5 micro-batches), with and without anxiety: in the default runs validation never stagnates long
# enough to panic.
BOLD = {"knobs": {"lr": 3e-2}, "workload": {"eval_every": 5}}
ABLATIONS.update(bold_start=BOLD, bold_start_no_anxiety={**BOLD, "anxiety": {"enabled": False}})
DEFAULT_ABLATIONS = [name for name in ABLATIONS if not name.startswith("bold_start")]


def base_config(task: str, seed: int, steps: int, batch: int) -> dict:
    """The benchmark's economy config as a dict (small: two adapted projections)."""
    per_cell = 5 if task in ("math", "logic", "sorting", "sequence", "json_repair") else 1
    return {
        "seed": seed,
        "workload": {
            "task": task,
            "steps": steps,
            "batch_size": batch,
            "rank": 8,
            "max_rank": 16,
            "targets": ["q_proj", "v_proj"],
            "val_examples": 24,
            "probe_examples": 8,
            "test_per_cell": per_cell,
            "max_new_tokens": 40,
            "eval_every": 15,
            "checkpoint_every": 10**6,
        },
        "agents": {"decide_every": 5},
        "bursts": {"window": 5, "patience": 1},
    }


def merged(config: dict, update: dict) -> EconomyConfig:
    """`config` with each section of `update` merged in."""
    data = copy.deepcopy(config)
    for key, value in update.items():
        data.setdefault(key, {}).update(value)
    return EconomyConfig.model_validate(data)


def design(config: EconomyConfig) -> str:
    """A short hash of a resolved economy config and of the economy package's source (the cache
    key of its runs: a changed mechanism is a new design even under the same config)."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    digest = hashlib.sha256(text.encode())
    for path in sorted(Path(economy.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def run_economy(host, config: EconomyConfig) -> dict:
    """One steered run."""
    job = Job(config, host=host)
    job.train()
    return job.finish()


FIXED = {"agents": {"roles": []}, "anxiety": {"enabled": False}, "bursts": {"enabled": False}}


def run_schedule(host, config: dict, schedule) -> dict:
    """The same loop with no agents, anxiety or bursts: lr set by `schedule(step)` each step."""
    fixed = merged(config, FIXED)
    job = Job(fixed, host=host)
    while job.micro < fixed.workload.steps:
        job.steering.knobs.lr = schedule(job.micro)
        job.step()
    return job.finish()


def constant(lr: float):
    """A constant learning rate."""
    return lambda step: lr


def cosine(peak: float, steps: int):
    """Linear warm-up over 10 % of the steps, then cosine decay to 0."""
    warm = max(1, steps // 10)

    def lr(step: int) -> float:
        if step < warm:
            return peak * (step + 1) / warm
        return 0.5 * peak * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    return lr


def run_trainer(host, config: dict, tmp: str) -> dict:
    """transformers.Trainer with default arguments on the same PEFT model and micro-batches."""
    from transformers import Trainer, TrainingArguments

    cfg = EconomyConfig.model_validate(config)
    work = cfg.workload
    source = TaskSource(work.task, cfg.seed)
    model = peft_model(copy.deepcopy(host.model), work, cfg.seed)
    examples = [
        ex for step in range(work.steps) for ex in source.train_batch(step, work.batch_size, None)
    ]
    args = TrainingArguments(
        output_dir=tmp,
        max_steps=work.steps,
        per_device_train_batch_size=work.batch_size,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        seed=cfg.seed,
        disable_tqdm=True,
        remove_unused_columns=False,
        use_cpu=host.device.type == "cpu",
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=lambda b: vars(encode(host.tokenizer, b, host.device)),
    )
    trainer.train()
    val = chunks(host.tokenizer, source.fixed(1, work.val_examples, "holdout"), host.device)
    final = evaluate_loss(model, val)
    final["task_accuracy"] = task_accuracy(
        model, host.tokenizer, source.test_examples(work.test_per_cell), work.max_new_tokens
    )
    return final


def run_pbt(config: dict) -> dict:
    """Ray Tune PBT (4 members) of the lr over the same fixed-schedule job, in the grid's range."""
    from economy_pbt import run_pbt as pbt

    return pbt(merged(config, FIXED).model_dump(mode="json"), GRID[0], GRID[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="json_repair", help="a family or a grid (default: mixed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=60, help="micro-batches per run")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--part",
        choices=["schedules", "ablations"],
        default="schedules",
        help="the economy against the schedules, or the economy against its ablations",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--name",
        default=None,
        help="the result's name (its JSON file and RESULTS.md section; default: "
        "economy_vs_schedules or economy_ablations, then the task, steps and seeds unless default)",
    )
    parser.add_argument(
        "--ablations",
        nargs="+",
        choices=list(ABLATIONS),
        default=DEFAULT_ABLATIONS,
        help="the ablations to run, in this order (bold_start*: the anxiety scenario)",
    )
    parser.add_argument(
        "--pbt-seeds",
        type=int,
        nargs="*",
        default=None,
        help="seeds on which PBT runs (default: every seed; none: skip it)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    host = load_host("builtin")
    results: dict[str, list[dict]] = {}
    cache = RunCache(args)

    def record(name: str, seed: int, run, *run_args) -> dict:
        key = f"{name} {design(run_args[1])}" if run is run_economy else name
        result = cache.get(key, seed)
        if result is None:
            started = time.perf_counter()
            result = run(*run_args)
            result["seconds"] = round(time.perf_counter() - started, 1)
            cache.put(key, seed, result)
        results.setdefault(name, []).append(result)
        print(
            f"{name:>14} val={result['val_loss']:.4f} acc={result['task_accuracy']:.3f} "
            f"({result['seconds']}s)",
            flush=True,
        )
        return result

    for seed in args.seeds:
        config = base_config(args.task, seed, args.steps, args.batch)
        print(f"seed {seed}", flush=True)
        if args.part == "ablations":
            record("economy", seed, run_economy, host, merged(config, {}))
            for name in args.ablations:
                record(name, seed, run_economy, host, merged(config, ABLATIONS[name]))
            continue
        for lr in GRID:
            record(f"grid {lr:.1e}", seed, run_schedule, host, config, constant(lr))
        with tempfile.TemporaryDirectory() as tmp:
            record("trainer", seed, run_trainer, host, config, tmp)
        if args.pbt_seeds is None or seed in args.pbt_seeds:
            record("pbt", seed, run_pbt, config)
        record("economy", seed, run_economy, host, merged(config, {}))
    if args.part == "ablations":
        report_ablations(args, results)
        return
    means = [np.mean([r["val_loss"] for r in results[f"grid {lr:.1e}"]]) for lr in GRID]
    best = int(np.argmin(means))
    results["best_grid"] = results[f"grid {GRID[best]:.1e}"]
    schedule = cosine(GRID[best], args.steps)
    for seed in args.seeds:
        config = base_config(args.task, seed, args.steps, args.batch)
        result = record(f"cosine {GRID[best]:.1e}", seed, run_schedule, host, config, schedule)
        results.setdefault("cosine", []).append(result)
    report(args, results, best)


class RunCache:
    """Finished runs in `results/economy_runs.jsonl`, so an interrupted benchmark resumes
    where it stopped (a run is keyed by task, steps, batch, seed and method)."""

    def __init__(self, args) -> None:
        self.path = RESULTS_DIR / "economy_runs.jsonl"
        self.base = {"task": args.task, "steps": args.steps, "batch": args.batch}
        self.done: dict[tuple, dict] = {}
        self._load()

    def _load(self) -> None:
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                self.done[self._key(entry["method"], entry["seed"], entry)] = entry["result"]

    def _key(self, method: str, seed: int, base: dict) -> tuple:
        return (base["task"], base["steps"], base["batch"], seed, method)

    def get(self, method: str, seed: int) -> dict | None:
        """A finished run's result (also one another benchmark process finished since), or None."""
        key = self._key(method, seed, self.base)
        if key not in self.done:
            self._load()
        return self.done.get(key)

    def put(self, method: str, seed: int, result: dict) -> None:
        """Record a finished run."""
        entry = {**self.base, "seed": seed, "method": method, "result": result}
        RESULTS_DIR.mkdir(exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        self.done[self._key(method, seed, self.base)] = result


def _header(args) -> list[str]:
    return [
        f"PEFT LoRA (q_proj, v_proj; rank 8) of the built-in host on `{args.task}`: "
        f"{args.steps} micro-batches of {args.batch}, seeds {args.seeds}; mean ± std over seeds. "
        "The machine was shared with other work while measuring (learning figures only).",
        "",
        "| method | runs per seed | final val loss | holdout task accuracy |",
        "|---|---:|---:|---:|",
    ]


def _row(label: str, runs: int, results: list[dict]) -> str:
    vals = [r["val_loss"] for r in results]
    accs = [r["task_accuracy"] for r in results]
    return f"| {label} | {runs} | {mean_std(vals, 4)} | {mean_std(accs, 3)} |"


def _name(args, base: str) -> str:
    """The result's name: `--name`, else `base` with the task, steps and seeds unless default."""
    if args.name:
        return args.name
    task = "" if args.task == "json_repair" else f"_{args.task}"
    steps = "" if args.steps == 60 else f"_steps{args.steps}"
    seeds = "" if args.seeds == [0, 1, 2] else "_seeds" + "".join(map(str, args.seeds))
    if len(args.seeds) > 3 and args.seeds == list(range(args.seeds[0], args.seeds[-1] + 1)):
        seeds = f"_seeds{args.seeds[0]}-{args.seeds[-1]}"
    return base + task + steps + seeds


def report_ablations(args, results: dict[str, list[dict]]) -> None:
    """The economy against each ablation: table, JSON and RESULTS.md section."""
    names = args.ablations
    lines = _header(args) + [_row(name, 1, results[name]) for name in ["economy", *names]]
    econ = [r["val_loss"] for r in results["economy"]]
    deltas = {
        name: float(np.mean([r["val_loss"] for r in results[name]]) - np.mean(econ))
        for name in names
    }
    unchanged = [
        name
        for name in names
        if all(
            abs(a["val_loss"] - b["val_loss"]) < 1e-9
            for a, b in zip(results[name], results["economy"], strict=True)
        )
    ]
    if {"bold_start", "bold_start_no_anxiety"} <= set(names):
        deltas["anxiety_in_bold_start"] = (
            deltas["bold_start_no_anxiety"] - deltas["bold_start"]
        )  # bold start without anxiety minus with it
    lines += [
        "",
        "Val loss of each ablation minus the full economy's (positive: the mechanism "
        "helped; anxiety_in_bold_start: bold_start_no_anxiety minus bold_start): "
        + ", ".join(f"{k} {v:+.4f}" for k, v in deltas.items()),
        "",
        "Ablations that changed no run's outcome: " + (", ".join(unchanged) or "none") + ".",
    ]
    table = "\n".join(lines)
    print(table)
    write_result(
        _name(args, "economy_ablations"),
        {"results": results, "deltas": deltas, "unchanged": unchanged, "steps": args.steps},
        table,
    )


def paired_seeds(method: list[float], baseline: list[float]) -> dict:
    """Per-seed differences `method - baseline`, their mean, std and 95 % Student-t interval
    (evolora.stats), and on how many seeds `method` is lower (wins), equal, higher."""
    out = paired_difference(method, baseline, interval="t")
    diffs = [m - b for m, b in zip(method, baseline, strict=True)]
    out.update(
        diffs=diffs,
        wins=sum(d < 0 for d in diffs),
        ties=sum(d == 0 for d in diffs),
        losses=sum(d > 0 for d in diffs),
    )
    return out


def landing_rates(args, results: dict[str, list[dict]]) -> list[dict]:
    """Per seed, the lr the economy's opening search landed on against the grid rate that was
    best on that seed (the seeds whose search landed, i.e. ended before the budget)."""
    out = []
    for i, seed in enumerate(args.seeds):
        landed = results["economy"][i].get("landed_lr")
        if landed is None:
            continue
        best = min(GRID, key=lambda lr: results[f"grid {lr:.1e}"][i]["val_loss"])
        out.append({"seed": seed, "landed": landed, "best_rate": best, "ratio": landed / best})
    return out


def report(args, results: dict[str, list[dict]], best: int) -> None:
    """The economy against the schedules: table, JSON and RESULTS.md section."""
    runs = {"economy": 1, "best_grid": 8, "cosine": 1, "trainer": 1}
    lines = _header(args)
    for name, count in runs.items():
        label = f"best constant lr ({GRID[best]:.1e})" if name == "best_grid" else name
        lines.append(_row(label, count, results[name]))
    pbt_seeds = [s for s in args.seeds if args.pbt_seeds is None or s in args.pbt_seeds]
    if "pbt" in results:
        engines = sorted({r.get("engine", "Ray Tune") for r in results["pbt"]})
        lines.append(
            _row(f"PBT, 4 members, seeds {pbt_seeds} ({'; '.join(engines)})", 4, results["pbt"])
        )
    mean = {name: float(np.mean([r["val_loss"] for r in results[name]])) for name in runs}
    lines += [
        "",
        "Constant-lr grid (mean final val loss): "
        + ", ".join(
            f"{lr:.1e}: {np.mean([r['val_loss'] for r in results[f'grid {lr:.1e}']]):.4f}"
            for lr in GRID
        ),
    ]
    target = {
        "economy_le_best_grid": mean["economy"] <= mean["best_grid"],
        "economy_lt_cosine": mean["economy"] < mean["cosine"],
    }
    versus_pbt = " PBT was not run."
    if "pbt" in results:
        paired = [args.seeds.index(seed) for seed in pbt_seeds]
        economy_there = np.mean([results["economy"][i]["val_loss"] for i in paired])
        pbt_mean = np.mean([r["val_loss"] for r in results["pbt"]])
        versus_pbt = (
            f" On seeds {pbt_seeds}: economy (1 run) {economy_there:.4f} vs PBT (4 runs) "
            f"{pbt_mean:.4f}."
        )
    econ = [r["val_loss"] for r in results["economy"]]
    paired = {
        name: paired_seeds(econ, [r["val_loss"] for r in results[name]])
        for name in ("best_grid", "cosine")
    }
    lines += [
        "",
        "Per seed (economy / best constant / cosine): "
        + "; ".join(
            f"{seed}: {e:.4f} / {b['val_loss']:.4f} / {c['val_loss']:.4f}"
            for seed, e, b, c in zip(
                args.seeds, econ, results["best_grid"], results["cosine"], strict=True
            )
        ),
    ]
    landing = landing_rates(args, results)
    if landing:
        spread = np.exp(np.mean([np.log(x["ratio"]) for x in landing]))
        lines.append(
            "Landing rate after the opening search / the seed's own best grid rate (ratio): "
            + "; ".join(
                f"{x['seed']}: {x['landed']:.1e} / {x['best_rate']:.1e} ({x['ratio']:.2f})"
                for x in landing
            )
            + f"; geometric mean ratio {spread:.2f}."
        )
    for name, label in (("best_grid", "the best constant lr"), ("cosine", "cosine")):
        p = paired[name]
        lines.append(
            f"Paired, economy minus {label}: {p['mean']:+.4f} ± {p['std']:.4f}, "
            f"95 % Student-t interval [{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}]; "
            f"economy better on {p['wins']} of {len(econ)} seeds."
        )
    lines += [
        "",
        f"Targets: economy <= best grid value: {target['economy_le_best_grid']}; "
        f"economy < cosine: {target['economy_lt_cosine']}.{versus_pbt}",
        "Grid, cosine and Trainer runs are reused from results/economy_runs.jsonl when present.",
    ]
    table = "\n".join(lines)
    print(table)
    write_result(
        _name(args, "economy_vs_schedules"),
        {
            "results": results,
            "grid": GRID,
            "best_grid_lr": GRID[best],
            "targets": target,
            "paired": paired,
            "landing": landing,
            "steps": args.steps,
            "batch": args.batch,
        },
        table,
    )


if __name__ == "__main__":
    main()
