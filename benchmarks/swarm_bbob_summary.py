"""The report of `swarm_bbob.py`: its per-run store, and the tables and target check over every
(function, dimension, instance) cell measured.

A run is keyed `METHOD|bbob:FID:DIM:INST|SEED|BUDGET`; its result is (final log10 regret,
seconds or None, seconds per ask + tell or None). The swarm is compared with every other method:
better / tied / worse when its median is lower / within `TIE` / higher.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

TIE = 0.1
TARGETS = {"tpe": 0.6, "random": 0.9}  # the share of functions the swarm must be better on


def run_key(method: str, fid: int, dim: int, inst: int, seed: int, budget: int) -> str:
    """The store's key of one run."""
    return f"{method}|bbob:{fid}:{dim}:{inst}|{seed}|{budget}"


def load_runs(path: Path, code: str) -> dict[str, tuple]:
    """The runs kept in the JSONL store at `path` (empty when it does not exist); a swarm run
    counts only when it was made with the swarm source hashed `code`."""
    runs: dict[str, tuple] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["code"] in (None, code):
                runs[record["key"]] = tuple(record["result"])
    return runs


def _counts(diffs: list[float]) -> dict[str, int]:
    better, worse = sum(d < -TIE for d in diffs), sum(d > TIE for d in diffs)
    return {"better": better, "tied": len(diffs) - better - worse, "worse": worse}


def _count_row(label: str, c: dict[str, int]) -> str:
    total = c["better"] + c["tied"] + c["worse"]
    return f"| {label} | {c['better']} | {c['tied']} | {c['worse']} | {c['better'] / total:.0%} |"


def _span(fids: list[int]) -> str:
    """'f1-f5, f9' for [1, 2, 3, 4, 5, 9]."""
    runs: list[list[int]] = []
    for f in sorted(fids):
        if runs and f == runs[-1][-1] + 1:
            runs[-1].append(f)
        else:
            runs.append([f])
    return ", ".join(f"f{r[0]}" + (f"-f{r[-1]}" if len(r) > 1 else "") for r in runs)


def summarise(
    results: dict[tuple[str, int, int, int], list[tuple]], methods: list[str], header: str
) -> tuple[dict, str]:
    """(figures, markdown table) over `results`, keyed (method, fid, dim, instance) -> one result
    per seed; every key of the swarm has one for every other method."""
    others = [m for m in methods if m != "swarm"]
    cells = sorted({(f, d, i) for (m, f, d, i) in results if m == "swarm"})
    functions = sorted({f for f, _, _ in cells})
    dims = sorted({d for _, d, _ in cells})
    groups = sorted({(d, i) for _, d, i in cells})
    pooled: dict[str, dict] = {m: defaultdict(list) for m in methods}
    seconds: dict[str, dict[int, list[float]]] = {m: defaultdict(list) for m in methods}
    overhead: dict[str, list[float]] = defaultdict(list)
    for (m, f, d, i), runs in results.items():
        regrets = [r[0] for r in runs]
        for key in (f, (d, f), (d, i, f)):
            pooled[m][key] += regrets
        for _, total, per_trial in runs:
            if total is not None:  # runs from the baseline cache keep only their regret
                seconds[m][d].append(total)
                overhead[m].append(per_trial)
    med = {m: {k: float(np.median(v)) for k, v in pooled[m].items()} for m in methods}

    def compare(keys: list) -> dict[str, dict[str, int]]:
        return {o: _counts([med["swarm"][k] - med[o][k] for k in keys]) for o in others}

    def suite(m: str, keys: list) -> float:
        return float(np.median([med[m][k] for k in keys]))

    dim_keys = {d: [(d, f) for f in functions if (d, f) in med["swarm"]] for d in dims}
    group_keys = {g: [(*g, f) for f in functions if (*g, f) in med["swarm"]] for g in groups}
    counts = compare(functions)
    counts_per_dim = {d: compare(dim_keys[d]) for d in dims}
    counts_per_problem = compare([(d, i, f) for f, d, i in cells])
    suite_median = {m: suite(m, functions) for m in methods}
    suite_per_dim = {m: {d: suite(m, dim_keys[d]) for d in dims} for m in methods}
    suite_per_group = {m: {g: suite(m, group_keys[g]) for g in groups} for m in methods}

    lines = [
        header,
        "",
        "Median final log10 regret per function over every measured cell and seed:",
    ]
    lines += ["", "| f | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for f in functions:
        lines.append(f"| f{f} | " + " | ".join(f"{med[m][f]:.2f}" for m in methods) + " |")
    several = len(groups) > 1  # else the per-function table is the only problem's
    for d in dims if several else []:
        insts = [i for dd, i in groups if dd == d]
        lines += ["", f"Dimension {d}: median over seeds, instances {' / '.join(map(str, insts))}:"]
        lines += ["", "| f | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for f in functions:
            row = [
                " / ".join(f"{med[m][(d, i, f)]:.2f}" for i in insts if (d, i, f) in med[m])
                for m in methods
            ]
            lines.append(f"| f{f} | " + " | ".join(row) + " |")
    lines += ["", "| swarm vs (per function) | better | tied | worse | share better |"]
    lines.append("|---|---|---|---|---|")
    lines += [_count_row(o, counts[o]) for o in others]
    if len(dims) > 1:
        lines += ["", "| dim | swarm vs | better | tied | worse | share better |"]
        lines.append("|---|---|---|---|---|---|")
        for d in dims:
            lines += [_count_row(f"{d} | {o}", counts_per_dim[d][o]) for o in others]
    if several:
        lines += [
            "",
            "| swarm vs (per function x dim x instance) | better | tied | worse | share better |",
        ]
        lines.append("|---|---|---|---|---|")
        lines += [_count_row(o, counts_per_problem[o]) for o in others]
    head = " | ".join(f"dim {d}" for d in dims)
    lines += ["", f"| method | median over suite | {head} |", "|---" * (len(dims) + 2) + "|"]
    for m in methods:
        per = " | ".join(f"{suite_per_dim[m][d]:.2f}" for d in dims)
        lines.append(f"| {m} | {suite_median[m]:.2f} | {per} |")
    if several:
        head = " | ".join(f"dim {d} inst {i}" for d, i in groups)
        lines += ["", f"| method | {head} |", "|---" * (len(groups) + 1) + "|"]
        for m in methods:
            per = " | ".join(f"{suite_per_group[m][g]:.2f}" for g in groups)
            lines.append(f"| {m} | {per} |")
    lines += ["", "| method | " + " | ".join(f"mean s / run, dim {d}" for d in dims)]
    lines[-1] += " | median ms per ask+tell, all dims |"
    lines.append("|---" * (len(dims) + 2) + "|")
    for m in methods:
        per = " | ".join(
            f"{np.mean(seconds[m][d]):.2f}" if seconds[m][d] else "n/a (cached)" for d in dims
        )
        cost = f"{np.median(overhead[m]) * 1e3:.2f}" if overhead[m] else "n/a (cached)"
        lines.append(f"| {m} | {per} | {cost} |")
    targets = _target_check(counts, suite_median, suite_per_dim, suite_per_group, len(functions))
    lines += ["", *targets["lines"]]
    figures = {
        "tie": TIE,
        "cells": [list(c) for c in cells],
        "medians": {m: {f: med[m][f] for f in functions} for m in methods},
        "cell_medians": {
            m: {f"{f}:{d}:{i}": med[m][(d, i, f)] for f, d, i in cells} for m in methods
        },
        "counts": counts,
        "counts_per_dim": counts_per_dim,
        "counts_per_problem": counts_per_problem,
        "suite_median": suite_median,
        "per_dim_median": suite_per_dim,
        "per_dim_instance_median": {
            m: {f"{d}:{i}": v for (d, i), v in suite_per_group[m].items()} for m in methods
        },
        "seconds_per_run": {
            m: {d: float(np.mean(v)) for d, v in seconds[m].items() if v} for m in methods
        },
        "overhead_ms": {m: float(np.median(v) * 1e3) for m, v in overhead.items() if v},
        "targets": targets["met"],
    }
    return figures, "\n".join(lines)


def _target_check(counts, suite_median, per_dim, per_group, n_functions) -> dict:
    """The issue's targets, each met or missed with its measured figure."""
    met, lines = {}, ["Targets:"]
    for other, share in TARGETS.items():
        if other not in counts:
            continue
        got = counts[other]["better"] / n_functions
        met[f"better_than_{other}"] = got >= share
        lines.append(
            f"- better than {other} on >= {share:.0%} of functions: {got:.0%} "
            f"({counts[other]['better']} of {n_functions}): {'met' if got >= share else 'missed'}"
        )
    if "random" in suite_median:
        scopes = {"suite": (suite_median["swarm"], suite_median["random"])}
        scopes |= {
            f"dim {d}": (per_dim["swarm"][d], per_dim["random"][d]) for d in per_dim["swarm"]
        }
        scopes |= {
            f"dim {d} inst {i}": (per_group["swarm"][(d, i)], per_group["random"][(d, i)])
            for d, i in per_group["swarm"]
        }
        worse = [name for name, (ours, theirs) in scopes.items() if ours > theirs]
        met["never_worse_than_random"] = not worse
        lines.append(
            "- never worse than random on the median over the suite (overall, per dimension, per "
            f"dimension and instance): swarm {suite_median['swarm']:.2f} against random "
            f"{suite_median['random']:.2f}; "
            + (f"missed in {', '.join(worse)}" if worse else "met in every scope")
        )
    return {"met": met, "lines": lines}


def missing_groups(wanted: list[tuple[int, int, int]], measured: list[tuple[int, int, int]]) -> str:
    """A sentence naming the (dimension, instance) groups with unmeasured functions, or ''."""
    gaps: dict[tuple[int, int], list[int]] = defaultdict(list)
    for f, d, i in sorted(set(wanted) - set(measured)):
        gaps[(d, i)].append(f)
    if not gaps:
        return ""
    parts = [f"dim {d} inst {i}: {_span(fs)}" for (d, i), fs in sorted(gaps.items())]
    return "Not measured (no complete set of runs): " + "; ".join(parts) + "."
