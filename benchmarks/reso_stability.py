"""Validating the stability monitor: warning precision / recall on labelled generations, and the
effect of automatic temperature adjustment on the degenerate rate.

Per seed a Reso model trains for the budget, then generates from fixed prompts at temperatures 0
(greedy), 0.8 and 1.6, plus a few runs with a corrupted weight (a NaN in a projection: divergence).
Labels never look at the monitor: a generation is *degenerate* when it loops (at least half of its
4-grams after the 8th token already occurred in it) or when its logits went non-finite; else
healthy. The monitor *warns* when any step is classed periodic or divergent or flags entropy
collapse. With adjustment off we score the warnings against the labels; with it on we count how
many of the same generations end degenerate.

Calibration: the generations split in two halves (alternate cases). On the first, the detector
thresholds (recurrence distance and share, divergent exponent, entropy floor) are chosen by F1 over
a grid, replaying the monitor on each generation's recorded trajectory (with adjustment off the
trajectory does not depend on the monitor); precision and recall are then measured on the other
half only, for the default and the calibrated thresholds. False positives of the default
thresholds are counted per kind of warning.

    python benchmarks/reso_stability.py             # tiny preset, 10 CPU s of training, 3 seeds
"""

from __future__ import annotations

import argparse
import copy
import itertools
import time

import numpy as np
import torch
from _common import mean_std, write_result
from reso_common import build, run, setup

from evolora.reso.inference import ResoEngine, decode
from evolora.reso.sections import StabilityConfig
from evolora.reso.stability import StabilityMonitor

PROMPTS = ["ROMEO:", "KING HENRY:", "math: 3+4=", "seq: 2 4 6 8 =", "First Citizen:\n",
           "sort asc: 5 2 9 =", "The", "logic: T and not F ="]
TEMPERATURES = (0.0, 0.8, 1.6)
DEGENERATE_WARNINGS = ("repetition loop", "entropy collapse", "divergent", "non-finite")
GRID = {"recurrence_distance": (0.02, 0.05, 0.1), "recurrence_share": (0.5, 0.7, 0.9),
        "divergent_lyapunov": (1.0, 2.0, 4.0), "entropy_floor": (0.01, 0.05, 0.2)}


def loops(tokens: list[int]) -> bool:
    """At least half of the 4-grams from the 8th token on already occurred earlier."""
    grams = [tuple(tokens[i - 3 : i + 1]) for i in range(3, len(tokens))]
    seen, repeats, counted = set(), 0, 0
    for i, gram in enumerate(grams):
        if i + 3 >= 8:
            counted += 1
            repeats += gram in seen
        seen.add(gram)
    return counted > 0 and repeats / counted >= 0.5


def generate(engine: ResoEngine, prompt: str, temperature: float, seed: int, adjust: bool):
    """(degenerate label, warning kinds, the monitor's inputs per step) of one 48-token
    generation."""
    engine.model.config.stability["auto_temperature_adjust"] = adjust
    decoder = engine.start(prompt, seed)
    seen = []
    observe = decoder.monitor.observe

    def record(hidden, entropy):
        seen.append((hidden.detach().float().cpu().clone(), entropy))
        return observe(hidden, entropy)

    decoder.monitor.observe = record
    result = decode([decoder], 48, temperature, None, 0.0)[0]
    diverged = any("non-finite" in w or "divergent" in w for w in result.warnings) or not all(
        np.isfinite(result.entropy_trace))
    label = loops(result.tokens) or (diverged and not decoder.finite())
    return label, kinds(result.warnings), seen


def kinds(warnings: list[str]) -> set[str]:
    """The degenerate-warning kinds among a generation's warnings."""
    return {key for w in warnings for key in DEGENERATE_WARNINGS if key in w}


def replay(config: StabilityConfig, seen) -> bool:
    """Whether the monitor with `config` warns (a degenerate kind) on a recorded trajectory."""
    monitor = StabilityMonitor(config)
    return any(kinds([r.warning]) for r in (monitor.observe(h, e) for h, e in seen) if r.warning)


def scores(labels: np.ndarray, warned: np.ndarray) -> tuple[float, float]:
    """(precision, recall) of warnings against labels."""
    tp = int((labels & warned).sum())
    return tp / max(1, int(warned.sum())), tp / max(1, int(labels.sum()))


def calibrate(base: StabilityConfig, labels: np.ndarray, trajectories: list) -> StabilityConfig:
    """The grid's thresholds with the best F1 on these generations (ties: higher precision)."""
    best, best_key = base, (-1.0, -1.0)
    for values in itertools.product(*GRID.values()):
        config = base.model_copy(update=dict(zip(GRID, values, strict=True)))
        warned = np.array([replay(config, seen) for seen in trajectories])
        precision, recall = scores(labels, warned)
        f1 = 2 * precision * recall / max(1e-9, precision + recall)
        if (f1, precision) > best_key:
            best, best_key = config, (f1, precision)
    return best

def corrupted(engine: ResoEngine) -> ResoEngine:
    """A copy whose first attention value projection holds a NaN (its generations diverge)."""
    model = copy.deepcopy(engine.model)
    with torch.no_grad():
        model.model.layers[0].self_attn.v_proj.weight[0, 0] = float("nan")
    return ResoEngine(model, engine.tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--budget", type=float, default=10.0, help="training CPU seconds")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer, config, val, batches = setup(args.preset, 8)
    per_seed = []
    started = time.time()
    for seed in range(args.seeds):
        model = build("reso", args.preset, tokenizer, seed)
        run(model, config, batches, val, seed, args.budget)
        engines = [(ResoEngine(model, tokenizer), t) for t in TEMPERATURES]
        broken = corrupted(engines[0][0])
        cases = [(e, p, t) for e, t in engines for p in PROMPTS]
        cases += [(broken, p, 0.8) for p in PROMPTS[:4]]
        off = [generate(e, p, t, seed, adjust=False) for e, p, t in cases]
        labels = np.array([label for label, _, _ in off])
        warned = np.array([bool(k) for _, k, _ in off])
        false_kinds = {key: sum(key in k for label, k, _ in off if not label)
                       for key in DEGENERATE_WARNINGS}
        calib, held = np.arange(len(cases)) % 2 == 0, np.arange(len(cases)) % 2 == 1
        default = StabilityConfig(**model.config.stability)
        tuned = calibrate(default, labels[calib], [seen for i, (_, _, seen) in enumerate(off)
                                                   if calib[i]])
        held_default = np.array([replay(default, off[i][2]) for i in np.flatnonzero(held)])
        held_tuned = np.array([replay(tuned, off[i][2]) for i in np.flatnonzero(held)])
        on = [generate(e, p, t, seed, adjust=True) for e, p, t in cases]
        model.config.stability.update({k: getattr(tuned, k) for k in GRID})
        on_tuned = [generate(e, p, t, seed, adjust=True) for e, p, t in cases]
        model.config.stability.update({k: getattr(default, k) for k in GRID})
        precision, recall = scores(labels, warned)
        figures = {
            "n": len(cases), "degenerate": int(labels.sum()), "warned": int(warned.sum()),
            "precision": precision, "recall": recall,
            "false_positives_by_kind": false_kinds,
            "held_out_n": int(held.sum()), "held_out_degenerate": int(labels[held].sum()),
            "held_out_precision_default": scores(labels[held], held_default)[0],
            "held_out_recall_default": scores(labels[held], held_default)[1],
            "held_out_precision_calibrated": scores(labels[held], held_tuned)[0],
            "held_out_recall_calibrated": scores(labels[held], held_tuned)[1],
            "calibrated": {k: getattr(tuned, k) for k in GRID},
            "degenerate_rate_fixed": float(labels.mean()),
            "degenerate_rate_adjusted": float(np.mean([label for label, _, _ in on])),
            "degenerate_rate_adjusted_calibrated": float(np.mean([lb for lb, _, _ in on_tuned])),
        }
        per_seed.append(figures)
        print(f"seed {seed}: {figures}", flush=True)
        # Written after every seed, so an interrupted run leaves the seeds it finished.
        table = render(per_seed, args)
        write_result("reso_stability", {"preset": args.preset, "budget_s": args.budget,
                                        "seeds": len(per_seed),
                                        "wall_s": round(time.time() - started, 1),
                                        "per_seed": per_seed}, table)
    print(table)


def render(rows: list[dict], args) -> str:
    """Markdown table of the monitor's validation."""
    def col(key, digits=3):
        return mean_std([r[key] for r in rows], digits)

    return "\n".join([
        f"`{args.preset}` Reso trained {args.budget:.0f} CPU s per seed, {len(rows)} seeds (of "
        f"{args.seeds} asked); "
        f"{rows[0]['n']} generations of 48 tokens per seed ({len(PROMPTS)} prompts x "
        f"temperatures {TEMPERATURES}, plus 4 with a NaN weight). Degenerate = loops (>= half "
        "the 4-grams repeated) or non-finite logits; 2 shared cores, other work running.",
        "",
        "| figure | mean ± std over seeds |",
        "|---|---|",
        f"| degenerate generations (labelled) | {col('degenerate', 1)} |",
        f"| generations the monitor warned about | {col('warned', 1)} |",
        f"| warning precision, all generations | {col('precision')} |",
        f"| warning recall, all generations | {col('recall')} |",
        f"| held-out precision, default thresholds | {col('held_out_precision_default')} |",
        f"| held-out recall, default thresholds | {col('held_out_recall_default')} |",
        f"| held-out precision, calibrated thresholds | {col('held_out_precision_calibrated')} |",
        f"| held-out recall, calibrated thresholds | {col('held_out_recall_calibrated')} |",
        f"| degenerate rate, fixed temperature | {col('degenerate_rate_fixed')} |",
        f"| degenerate rate, automatic temperature | {col('degenerate_rate_adjusted')} |",
        "| degenerate rate, automatic temperature, calibrated thresholds | "
        f"{col('degenerate_rate_adjusted_calibrated')} |",
        "",
        "False positives of the default thresholds by warning kind (summed over seeds): "
        + ", ".join(f"{k} {sum(r['false_positives_by_kind'][k] for r in rows)}"
                    for k in DEGENERATE_WARNINGS) + ".",
        "Calibrated thresholds per seed (F1 on the calibration half; held-out figures are on "
        "the other half): " + "; ".join(str(r["calibrated"]) for r in rows) + ".",
    ])


if __name__ == "__main__":
    main()
