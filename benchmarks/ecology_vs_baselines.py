"""Ecology vs baselines at equal wall-clock: holdout accuracy per family, mean ± std over seeds.

Methods, each given the same wall-clock budget on the same host and scored on the same holdout
examples (the holdout split, never trained on):
  host        the frozen host
  single_es   one adapter trained by the ecology's gradient-free rule (ES), no colony
  sft         PEFT LoRA trained with back-propagation (AdamW) on the same task stream
  ecology     the full ecology (its routed colony answers)
  no_assim    the ecology with assimilation off
  no_guard    the ecology with the diversity guard off
  eco_bp      the ecology with the backprop reference learner (gradients through the host): is
              the colony's machinery worth anything when its organelles can learn?
  eco_host    the ecology with host-basis adapters (`lora.basis: host`): ES searches r x r cores

python benchmarks/ecology_vs_baselines.py [--budget 120] [--seeds 0 1 2] [--config default]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from _common import mean_std, write_result

from evolora.ecology.colony import adapter_population
from evolora.ecology.commands import preset_path
from evolora.ecology.config import EcologyConfig
from evolora.ecology.evaluation import holdout_examples, slot_scores, summarize
from evolora.ecology.learning import ESJob, es_step
from evolora.ecology.loop import Ecology, is_reserved
from evolora.hosts import load_host
from evolora.hosts.host import Host
from evolora.tasks import TaskGrid
from evolora.telemetry.config_io import load_config
from evolora.telemetry.rundir import RunDir

METHODS = ("host", "single_es", "sft", "ecology", "no_assim", "no_guard", "eco_bp", "eco_host")


def train_batch(grid: TaskGrid, rng: np.random.Generator, n: int) -> list:
    """n training examples drawn uniformly over the grid's cells (probe prompts excluded)."""
    batch = []
    while len(batch) < n:
        example = grid.sample(rng, split="train")
        if not is_reserved(example):
            batch.append(example)
    return batch


def run_host(cfg, host, holdout, budget, seed, root):
    return summarize(slot_scores(host, None, [-1], holdout, cfg.grid.max_new_tokens)[0], holdout)


def run_ecology(cfg, host, holdout, budget, seed, root):
    cfg = cfg.model_copy(update={"generations": 10**6})
    cfg.evaluation.every = 10**6  # no evaluations inside the budget
    run = RunDir.create(root, cfg, name="ecology")
    ecology = Ecology.start(cfg, host, run)
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        ecology.step()
    ecology.holdout = holdout
    report = ecology.evaluate()
    ecology.close()
    result = report["routed"]
    result["merged_overall"] = report["merged"]["overall"]
    result["generations"] = ecology.generation
    result["merges"] = ecology.merges
    return result


def run_no_assim(cfg, host, holdout, budget, seed, root):
    cfg = cfg.model_copy(deep=True)
    cfg.assimilation_tuning.enabled = False
    return run_ecology(cfg, host, holdout, budget, seed, root)


def run_no_guard(cfg, host, holdout, budget, seed, root):
    cfg = cfg.model_copy(deep=True)
    cfg.diversity.enabled = False
    return run_ecology(cfg, host, holdout, budget, seed, root)


def run_eco_bp(cfg, host, holdout, budget, seed, root):
    cfg = cfg.model_copy(deep=True)
    cfg.learning.mode = "backprop"
    return run_ecology(cfg, host, holdout, budget, seed, root)


def run_eco_host(cfg, host, holdout, budget, seed, root):
    cfg = cfg.model_copy(deep=True)
    cfg.lora.basis = "host"
    return run_ecology(cfg, host, holdout, budget, seed, root)


def run_single_es(cfg, host, holdout, budget, seed, root):
    """One adapter, the ecology's ES rule, a batch as large as the whole colony's per step."""
    es = cfg.learning.es
    grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    population = adapter_population(host, cfg, 1 + 2 * es.pairs)
    rng = np.random.default_rng(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        batch = train_batch(grid, rng, es.batch * cfg.population.initial)
        es_step(host, population, [ESJob(0, batch, list(range(1, 1 + 2 * es.pairs)))], es, rng)
        steps += 1
    result = summarize(
        slot_scores(host, population, [0], holdout, cfg.grid.max_new_tokens)[0], holdout
    )
    population.detach()
    result["steps"] = steps
    return result


def run_sft(cfg, host, holdout, budget, seed, root, lr=2e-3, batch_size=32):
    """PEFT LoRA of the same rank on a fresh copy of the host, AdamW on the answer tokens only."""
    from peft import LoraConfig, get_peft_model

    fresh = load_host(cfg.host, cfg.device)
    torch.manual_seed(seed)
    targets = list(
        cfg.lora.targets
        or ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    model = get_peft_model(
        fresh.model, LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, target_modules=targets)
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    tokenizer, grid = fresh.tokenizer, TaskGrid(cfg.grid.families, cfg.grid.difficulties)
    rng = np.random.default_rng(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        batch = train_batch(grid, rng, batch_size)
        ids, labels = [], []
        for ex in batch:
            head = tokenizer(ex.prompt)["input_ids"]
            tail = tokenizer(ex.answer + "\n", add_special_tokens=False)["input_ids"]
            ids.append(head + tail)
            labels.append([-100] * len(head) + tail)
        width = max(len(x) for x in ids)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=fresh.device)
        label_ids = torch.tensor(
            [[-100] * (width - len(x)) + x for x in labels], device=fresh.device
        )
        mask = torch.arange(width)[None, :] >= torch.tensor([width - len(x) for x in ids])[:, None]
        mask = mask.long().to(fresh.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        loss = model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, labels=label_ids
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    merged = Host(model.merge_and_unload(), tokenizer, name="sft")
    result = summarize(
        slot_scores(merged, None, [-1], holdout, cfg.grid.max_new_tokens)[0], holdout
    )
    result["steps"] = steps
    return result


RUNNERS = {
    "host": run_host,
    "single_es": run_single_es,
    "sft": run_sft,
    "ecology": run_ecology,
    "no_assim": run_no_assim,
    "no_guard": run_no_guard,
    "eco_bp": run_eco_bp,
    "eco_host": run_eco_host,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per method and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default="default", help="ecology preset or YAML file")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args()
    base = load_config(preset_path(args.config), EcologyConfig)
    host = load_host(base.host, base.device)
    results: dict[str, list[dict]] = {m: [] for m in args.methods}
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            cfg = base.model_copy(update={"seed": seed})
            grid = TaskGrid(cfg.grid.families, cfg.grid.difficulties)
            holdout = holdout_examples(grid, cfg.evaluation.per_cell, seed)
            for method in args.methods:
                t0 = time.perf_counter()
                result = RUNNERS[method](cfg, host, holdout, args.budget, seed, root)
                result["seconds"] = time.perf_counter() - t0
                results[method].append(result)
                print(
                    f"seed {seed} {method:>9}: accuracy {result['overall']:.3f} "
                    f"({result['seconds']:.0f}s)",
                    flush=True,
                )
    families = base.grid.families
    rows = [
        "| method | mean over grid | " + " | ".join(families) + " |",
        "|---|---:|" + "---:|" * len(families),
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
        cells = " | ".join(mean_std(v) for v in per_family.values())
        rows.append(f"| {method} | {mean_std(overall)} | {cells} |")
    table = "\n".join(rows)
    notes = []
    mean = {m: f["overall_mean"] for m, f in figures.items()}
    if {"ecology", "host"} <= mean.keys():
        gain = 100 * (mean["ecology"] - mean["host"])
        notes.append(f"ecology - frozen host: {gain:+.1f} points (target >= +20)")
    if {"ecology", "single_es"} <= mean.keys():
        gain = 100 * (mean["ecology"] - mean["single_es"])
        notes.append(f"ecology - single ES adapter: {gain:+.1f} points (target > 0)")
    if {"ecology", "sft"} <= mean.keys() and mean["sft"] > 0:
        notes.append(f"ecology / SFT: {mean['ecology'] / mean['sft']:.2f} (ambition >= 0.9)")
    if {"eco_bp", "sft"} <= mean.keys():
        gain = 100 * (mean["eco_bp"] - mean["sft"])
        notes.append(f"ecology with backprop organelles - single SFT adapter: {gain:+.1f} points")
    text = (
        f"Holdout accuracy (exact answers), {len(args.seeds)} seeds, {args.budget:.0f} s of "
        f"wall-clock per method and seed, grid {families} x difficulties "
        f"{base.grid.difficulties}, {base.evaluation.per_cell} holdout examples per cell.\n\n"
        + table
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
    )
    print(text)
    write_result("ecology_vs_baselines", figures, text)


if __name__ == "__main__":
    main()
