"""LoRA SFT of the built-in host in fp32 and in bf16: holdout accuracy and training wall-clock.

One rank-8 LoRA adapter (all seven projections) is trained with Adam on the mean per-token answer
log-likelihood of train-split examples of the easy grid, the same batches for both precisions;
training forwards and backwards run in the host's precision (bf16: `evolora.hosts.precision`'s
bf16 linear products, factors and Adam state fp32). Both adapters are then scored by the same fp32
host on holdout prompts (greedy exact match) and by their holdout answer log-likelihood.

Claim (issue 13): a LoRA SFT run in bf16 reaches the fp32 run's holdout accuracy within noise
(3 seeds) in less wall-clock.

Run: python benchmarks/precision_sft.py [--seeds 0 1 2] [--steps 30] [--batch 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import mean_std, write_result

from evolora.hosts import Host, load_host
from evolora.hosts.generation import encode, target_logprobs
from evolora.hosts.precision import resolve_precision
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid, score

PRECISIONS = ("fp32", "bf16")


def tokenized(host: Host, examples) -> tuple[list[list[int]], list[list[int]], torch.Tensor]:
    """Prompt ids, answer ids (answer + newline) and answer lengths of `examples`."""
    heads = encode(host.tokenizer, [e.prompt for e in examples], special=True)
    tails = encode(host.tokenizer, [e.answer + "\n" for e in examples], special=False)
    return heads, tails, torch.tensor([len(t) for t in tails], dtype=torch.float32)


def train(host: Host, batches, seed: int, rank: int, lr: float) -> tuple[LoRAPopulation, float]:
    """A fresh one-adapter population trained on `batches` in `host`'s precision; (it, seconds)."""
    population = LoRAPopulation(host, n=1, rank=rank, alpha=2 * rank, seed=seed)
    factors = [population.A[k] for k in population.layer_names]
    factors += [population.B[k] for k in population.layer_names]
    for tensor in factors:
        tensor.requires_grad_(True)
    optimizer = torch.optim.Adam(factors, lr=lr)
    pad = host.tokenizer.pad_token_id
    start = time.perf_counter()
    for heads, tails, lengths in batches:
        route = population.route([0] * len(heads))
        with host.autocast():
            total = target_logprobs(host.model, heads, tails, pad, route)
        loss = -(total / lengths).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    for tensor in factors:
        tensor.requires_grad_(False)
        tensor.grad = None
    return population, seconds


def evaluate(host: Host, population: LoRAPopulation, examples, max_new_tokens: int) -> dict:
    """Greedy exact-match accuracy and mean per-token answer log-likelihood on `examples`, fp32."""
    ids = [0] * len(examples)
    done = host.generate([e.prompt for e in examples], max_new_tokens=max_new_tokens,
                         adapters=population, adapter_ids=ids)
    heads, tails, lengths = tokenized(host, examples)
    with torch.no_grad():
        total = target_logprobs(host.model, heads, tails, host.tokenizer.pad_token_id,
                                population.route(ids))
    return {"accuracy": float(np.mean([score(e, c) == 1.0 for e, c in zip(examples, done,
                                                                          strict=True)])),
            "answer_logprob_per_token": float((total / lengths).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds")
    parser.add_argument("--steps", type=int, default=30, help="Adam steps per run")
    parser.add_argument("--batch", type=int, default=16, help="training examples per step")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank")
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate")
    parser.add_argument("--holdout", type=int, default=10, help="holdout prompts per grid cell")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="greedy tokens per answer")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fp32 = load_host("builtin", device="cpu", precision="fp32")
    hosts = {"fp32": fp32, "bf16": Host(fp32.model, fp32.tokenizer, fp32.name,
                                        resolve_precision("bf16", fp32.device))}
    grid = TaskGrid.named("easy")
    holdout_rng = np.random.default_rng(12345)
    holdout = [grid.sample(holdout_rng, cell, "holdout") for cell in grid.cells
               for _ in range(args.holdout)]
    untrained = LoRAPopulation(fp32, n=1, rank=args.rank, seed=0)  # B = 0: the bare host
    base = evaluate(fp32, untrained, holdout, args.max_new_tokens)
    untrained.detach()
    runs: dict[str, list[dict]] = {name: [] for name in PRECISIONS}
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        batches = [tokenized(fp32, grid.sample_batch(rng, args.batch, "train"))
                   for _ in range(args.steps)]
        order = PRECISIONS if seed % 2 == 0 else PRECISIONS[::-1]  # alternate who runs first
        for name in order:
            population, seconds = train(hosts[name], batches, seed, args.rank, args.lr)
            result = evaluate(fp32, population, holdout, args.max_new_tokens)
            population.detach()
            runs[name].append({"seed": seed, "train_seconds": seconds, **result})
            print(f"seed {seed} {name}: {result} in {seconds:.1f} s", flush=True)
    speedups = [a["train_seconds"] / b["train_seconds"]
                for a, b in zip(runs["fp32"], runs["bf16"], strict=True)]
    accuracy = {n: [r["accuracy"] for r in rs] for n, rs in runs.items()}
    logprob = {n: [r["answer_logprob_per_token"] for r in rs] for n, rs in runs.items()}
    gap = np.array(accuracy["bf16"]) - np.array(accuracy["fp32"])
    std_error = float(np.sqrt(np.mean(accuracy["fp32"]) * (1 - np.mean(accuracy["fp32"]))
                              / len(holdout)))
    figures = {"args": vars(args), "holdout_prompts": len(holdout), "base_host": base,
               "runs": runs, "train_speedup_bf16_per_seed": speedups,
               "accuracy_gap_bf16_minus_fp32": gap.tolist(), "holdout_std_error": std_error}
    rows = [f"| {n} | {mean_std(accuracy[n])} | {mean_std(logprob[n])} | "
            f"{mean_std([r['train_seconds'] for r in runs[n]], 1)} |" for n in PRECISIONS]
    within = abs(gap.mean()) <= max(std_error, gap.std())
    table = "\n".join([
        f"LoRA SFT of the built-in host (rank {args.rank}, Adam lr {args.lr}, {args.steps} steps "
        f"x {args.batch} train examples of the easy grid), seeds {args.seeds}; both adapters "
        f"scored by the fp32 host on {len(holdout)} holdout prompts (greedy, exact).",
        "",
        "| training precision | holdout accuracy | answer log-prob per token | train seconds |",
        "|---|---:|---:|---:|",
        f"| (no adapter) | {base['accuracy']:.3f} | {base['answer_logprob_per_token']:.3f} | |",
        *rows,
        "",
        f"Accuracy gap bf16 - fp32: {mean_std(gap, signed=True)} (standard error of one run's "
        f"accuracy {std_error:.3f}): {'within' if within else 'outside'} noise. bf16 training "
        f"speed-up (fp32 s / bf16 s, per seed, runs alternating): "
        + ", ".join(f"{s:.2f}x" for s in speedups) + ". Measured on 2 cores shared with other "
        "work: the seconds drift, the per-seed ratios are what holds.",
    ])
    print(table)
    print(f"\nwritten to {write_result('precision_sft', figures, table)}")


if __name__ == "__main__":
    main()
