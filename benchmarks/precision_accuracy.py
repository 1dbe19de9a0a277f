"""Does bf16 change what the built-in host answers? Greedy completions and answer log-likelihoods
of the same holdout prompts under fp32 and under bf16 (forwards and generation both forced to
bf16), compared prompt by prompt.

Claim (issue 13): on >= 1,500 holdout prompts the greedy answers under bf16 equal fp32's on
>= 99 % of prompts, and the accuracy differs by less than its standard error.

Run: python benchmarks/precision_accuracy.py [--n 60] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from _common import write_result

from evolora.hosts import load_host
from evolora.hosts.evaluate import DEFAULT_MAX_NEW_TOKENS, grid_examples
from evolora.hosts.generation import encode, left_pad
from evolora.tasks import score


def layer_errors(hosts, prompts: list[str]) -> list[float]:
    """Relative error (Frobenius, real tokens only) of each hidden state and of the logits under
    bf16 against fp32, on one batch of `prompts`: where along the depth bf16 drifts."""
    host = hosts["fp32"]
    seqs = encode(host.tokenizer, prompts, special=True)
    ids, mask, positions = left_pad(seqs, host.tokenizer.pad_token_id, host.device)
    real = mask.bool()
    states = {}
    with torch.no_grad():
        for name, each in hosts.items():
            with each.autocast(generation=True):
                out = each.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                 output_hidden_states=True)
            states[name] = [*out.hidden_states[1:], out.logits]
    return [float((b[real] - a[real]).norm() / a[real].norm())
            for a, b in zip(states["fp32"], states["bf16"], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="holdout prompts per grid cell (25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the holdout draw")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    examples = grid_examples("default", args.n, args.seed)
    prompts = [e.prompt for e in examples]
    answers = [e.answer for e in examples]
    hosts = {name: load_host("builtin", device="cpu", precision=name) for name in ("fp32", "bf16")}
    completions, logliks, seconds = {}, {}, {}
    for name, host in hosts.items():
        print(f"generating {len(prompts)} completions in {name}...", flush=True)
        start = time.perf_counter()
        completions[name] = host.generate(prompts, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
        seconds[name] = time.perf_counter() - start
        logliks[name] = host.loglik(prompts, answers)
    errors = layer_errors(hosts, prompts[:64])
    n = len(prompts)
    same = np.array([a == b for a, b in zip(completions["fp32"], completions["bf16"], strict=True)])
    correct = {name: np.array([score(e, c) == 1.0 for e, c in zip(examples, done, strict=True)])
               for name, done in completions.items()}
    accuracy = {name: float(c.mean()) for name, c in correct.items()}
    correct_fp32 = correct["fp32"]
    std_error = {name: math.sqrt(a * (1 - a) / n) for name, a in accuracy.items()}
    gap = accuracy["bf16"] - accuracy["fp32"]
    # Paired standard error of the gap (the same prompts under both precisions).
    paired = float((correct["bf16"].astype(float) - correct["fp32"]).std(ddof=1) / math.sqrt(n))
    loglik_gap = (logliks["bf16"] - logliks["fp32"]).abs()
    figures = {
        "prompts": n, "n_per_cell": args.n, "seed": args.seed,
        "max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
        "identical_completions": float(same.mean()),
        "identical_where_fp32_correct": float(same[correct_fp32].mean()),
        "identical_where_fp32_wrong": float(same[~correct_fp32].mean()),
        "accuracy": accuracy, "std_error": std_error,
        "accuracy_gap": gap, "paired_std_error_of_gap": paired,
        "answer_loglik_abs_gap": {"median": float(loglik_gap.median()),
                                  "max": float(loglik_gap.max()),
                                  "mean_fp32": float(logliks["fp32"].mean())},
        "generate_seconds_single_pass": seconds,
        "relative_error_per_layer_then_logits": errors,
        "bf16_reason": hosts["bf16"].precision.reason,
        "differing_examples": [
            {"prompt": p, "fp32": a, "bf16": b}
            for p, a, b, s in zip(prompts, completions["fp32"], completions["bf16"], same,
                                  strict=True) if not s][:10],
    }
    ok_same = figures["identical_completions"] >= 0.99
    ok_acc = abs(gap) <= std_error["fp32"]
    table = "\n".join([
        f"Built-in host, {n} holdout prompts ({args.n} per cell of the default grid, seed "
        f"{args.seed}), greedy, up to {DEFAULT_MAX_NEW_TOKENS} new tokens; bf16 = the host's "
        "bf16 policy for forwards and generation (bf16 products in the linear layers, all else "
        "fp32: weights, residual stream, norms, attention softmax, output head).",
        "",
        "| measure | fp32 | bf16 | target |",
        "|---|---:|---:|---|",
        f"| accuracy (exact) ± standard error | {accuracy['fp32']:.4f} ± {std_error['fp32']:.4f}"
        f" | {accuracy['bf16']:.4f} ± {std_error['bf16']:.4f} | gap within the SE "
        f"{'✓' if ok_acc else '✗'} |",
        f"| **identical greedy completions** | | **{same.mean():.2%}** | >= 99% "
        f"{'✓' if ok_same else '✗'} |",
        f"| identical where fp32 is right / wrong | | {same[correct_fp32].mean():.2%} / "
        f"{same[~correct_fp32].mean():.2%} | |",
        f"| answer log-likelihood, median abs gap (nats) | | {loglik_gap.median():.4f} | |",
        f"| answer log-likelihood, max abs gap (nats) | | {loglik_gap.max():.4f} | |",
        "",
        "Relative error of bf16 against fp32 after each layer, then of the logits (64 prompts): "
        + ", ".join(f"{e:.1e}" for e in errors) + ".",
        "",
        f"Accuracy gap bf16 - fp32: {gap:+.4f} (paired standard error {paired:.4f}). "
        f"Generation wall-clock of one pass each: fp32 {seconds['fp32']:.0f} s, bf16 "
        f"{seconds['bf16']:.0f} s (single pass on a machine shared with other work: not a speed "
        "figure; see host_throughput).",
    ])
    print(table)
    print(f"\nwritten to {write_result('precision_accuracy', figures, table)}")


if __name__ == "__main__":
    main()
