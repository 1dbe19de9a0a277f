"""Validating the stability monitor: warning precision / recall on labelled generations, and the
effect of automatic temperature adjustment on the degenerate rate.

Per seed a Reso model trains for the budget, then generates from fixed prompts at temperatures 0
(greedy), 0.8 and 1.6, plus a few runs with a corrupted weight (a NaN in a projection: divergence).
Labels never look at the monitor: a generation is *degenerate* when it loops (at least half of its
4-grams after the 8th token already occurred in it) or when its logits went non-finite; else
healthy. The monitor *warns* when any step is classed periodic or divergent or flags entropy
collapse. With adjustment off we score the warnings against the labels; with it on we count how
many of the same generations end degenerate.

    python benchmarks/reso_stability.py             # tiny preset, 10 CPU s of training, 3 seeds
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from _common import mean_std, write_result
from reso_common import build, run, setup

from evolora.reso.inference import ResoEngine, decode

PROMPTS = ["ROMEO:", "KING HENRY:", "math: 3+4=", "seq: 2 4 6 8 =", "First Citizen:\n",
           "sort asc: 5 2 9 =", "The", "logic: T and not F ="]
TEMPERATURES = (0.0, 0.8, 1.6)
DEGENERATE_WARNINGS = ("repetition loop", "entropy collapse", "divergent", "non-finite")


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
    """(degenerate label, monitor warned) of one 48-token generation."""
    engine.model.config.stability["auto_temperature_adjust"] = adjust
    decoder = engine.start(prompt, seed)
    result = decode([decoder], 48, temperature, None, 0.0)[0]
    diverged = any("non-finite" in w or "divergent" in w for w in result.warnings) or not all(
        np.isfinite(result.entropy_trace))
    label = loops(result.tokens) or (diverged and not decoder.finite())
    warned = any(key in w for w in result.warnings for key in DEGENERATE_WARNINGS)
    return label, warned


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
        on = [generate(e, p, t, seed, adjust=True) for e, p, t in cases]
        labels = np.array([label for label, _ in off])
        warned = np.array([w for _, w in off])
        tp = int((labels & warned).sum())
        figures = {
            "n": len(cases), "degenerate": int(labels.sum()), "warned": int(warned.sum()),
            "precision": tp / max(1, int(warned.sum())), "recall": tp / max(1, int(labels.sum())),
            "degenerate_rate_fixed": float(labels.mean()),
            "degenerate_rate_adjusted": float(np.mean([label for label, _ in on])),
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
        f"| warning precision | {col('precision')} |",
        f"| warning recall | {col('recall')} |",
        f"| degenerate rate, fixed temperature | {col('degenerate_rate_fixed')} |",
        f"| degenerate rate, automatic temperature | {col('degenerate_rate_adjusted')} |",
    ])


if __name__ == "__main__":
    main()
