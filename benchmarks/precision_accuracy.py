"""Does bf16 change what the built-in host answers? Greedy completions and answer log-likelihoods
of the same holdout prompts under fp32 and under bf16 (forwards and generation both forced to
bf16), compared prompt by prompt: bf16 plain and bf16 verified (near-tie steps re-decided in fp32,
hosts/verified.py).

Claim (issue 13): on >= 1,500 holdout prompts the greedy answers under bf16 equal fp32's on
>= 99 % of prompts, and the accuracy differs by less than its standard error. The three modes run
chunk by chunk back to back, so their time ratios hold on a shared machine.

Run: python benchmarks/precision_accuracy.py [--n 60] [--seed 0] [--threads 1] [--margin 0.1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
from _common import write_result

from evolora.hosts import load_host
from evolora.hosts.evaluate import DEFAULT_MAX_NEW_TOKENS, grid_examples
from evolora.hosts.generation import encode, left_pad
from evolora.hosts.precision import VERIFY_MARGIN
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
    parser.add_argument("--margin", type=float, default=VERIFY_MARGIN,
                        help="verified bf16: top-2 margin below which a step is checked in fp32")
    parser.add_argument("--chunk", type=int, default=128, help="prompts per timed chunk")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    examples = grid_examples("default", args.n, args.seed)
    prompts = [e.prompt for e in examples]
    answers = [e.answer for e in examples]
    hosts = {name: load_host("builtin", device="cpu", precision=name) for name in ("fp32", "bf16")}
    verified = load_host("builtin", device="cpu", precision="bf16")
    verified.verify_margin = args.margin
    hosts["bf16"].verify_margin = 0.0  # plain bf16
    modes = {"fp32": hosts["fp32"], "bf16": hosts["bf16"], "bf16 verified": verified}
    completions = {name: [] for name in modes}
    seconds = {name: [] for name in modes}
    for start in range(0, len(prompts), args.chunk):  # the modes back to back on each chunk
        chunk = prompts[start : start + args.chunk]
        for name, host in modes.items():
            began = time.perf_counter()
            completions[name] += host.generate(chunk, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
            seconds[name].append(time.perf_counter() - began)
        print(f"{start + len(chunk)} / {len(prompts)} prompts", flush=True)
    logliks = {name: host.loglik(prompts, answers) for name, host in hosts.items()}
    errors = layer_errors(hosts, prompts[:64])
    n = len(prompts)
    same_as_fp32 = {name: np.array([a == b for a, b in zip(completions["fp32"], done, strict=True)])
                    for name, done in completions.items() if name != "fp32"}
    same, same_verified = same_as_fp32["bf16"], same_as_fp32["bf16 verified"]
    time_ratio = {name: statistics.median(f / m for f, m in zip(seconds["fp32"], times,
                                                                 strict=True))
                  for name, times in seconds.items() if name != "fp32"}
    stats = verified.verify_stats
    correct = {name: np.array([score(e, c) == 1.0 for e, c in zip(examples, done, strict=True)])
               for name, done in completions.items()}
    accuracy = {name: float(c.mean()) for name, c in correct.items()}
    correct_fp32 = correct["fp32"]
    std_error = {name: math.sqrt(a * (1 - a) / n) for name, a in accuracy.items()}
    gaps = {name: accuracy[name] - accuracy["fp32"] for name in same_as_fp32}
    gap, gap_verified = gaps["bf16"], gaps["bf16 verified"]
    # Paired standard error of the gap (the same prompts under both precisions).
    paired = float((correct["bf16"].astype(float) - correct["fp32"]).std(ddof=1) / math.sqrt(n))
    loglik_gap = (logliks["bf16"] - logliks["fp32"]).abs()
    figures = {
        "prompts": n, "n_per_cell": args.n, "seed": args.seed,
        "max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
        "identical_completions": float(same.mean()),
        "identical_completions_verified": float(same_verified.mean()),
        "verify_margin": args.margin,
        "verify_stats": {"rows": stats.rows, "checked_rows": stats.checked,
                         "checked_tokens": stats.checked_tokens, "corrected": stats.corrected,
                         "rounds": stats.rounds},
        "generate_speed_vs_fp32": time_ratio,
        "generate_seconds_per_chunk": seconds,
        "identical_where_fp32_correct": float(same[correct_fp32].mean()),
        "identical_where_fp32_wrong": float(same[~correct_fp32].mean()),
        "accuracy": accuracy, "std_error": std_error,
        "accuracy_gap": gap, "accuracy_gap_verified": gap_verified,
        "paired_std_error_of_gap": paired,
        "answer_loglik_abs_gap": {"median": float(loglik_gap.median()),
                                  "max": float(loglik_gap.max()),
                                  "mean_fp32": float(logliks["fp32"].mean())},
        "relative_error_per_layer_then_logits": errors,
        "bf16_reason": hosts["bf16"].precision.reason,
        "differing_examples": [
            {"prompt": p, "fp32": a, "bf16": b}
            for p, a, b, s in zip(prompts, completions["fp32"], completions["bf16"], same,
                                  strict=True) if not s][:10],
        "differing_examples_verified": [
            {"prompt": p, "fp32": a, "bf16_verified": b}
            for p, a, b, s in zip(prompts, completions["fp32"], completions["bf16 verified"],
                                  same_verified, strict=True) if not s][:10],
    }
    ok_same = {name: float(v.mean()) >= 0.99 for name, v in same_as_fp32.items()}
    ok_acc = {name: abs(g) <= std_error["fp32"] for name, g in gaps.items()}
    mark = {True: "✓", False: "✗"}
    table = "\n".join([
        f"Built-in host, {n} holdout prompts ({args.n} per cell of the default grid, seed "
        f"{args.seed}), greedy, up to {DEFAULT_MAX_NEW_TOKENS} new tokens; bf16 = the host's "
        "bf16 policy for forwards and generation (bf16 products in the linear layers, all else "
        "fp32: weights, residual stream, norms, attention softmax, output head); bf16 verified = "
        f"the same, with every step whose top-2 margin is below {args.margin} re-decided by an "
        "fp32 forward (hosts/verified.py, the host's default under bf16).",
        "",
        "| measure | fp32 | bf16 | bf16 verified | target |",
        "|---|---:|---:|---:|---|",
        f"| accuracy (exact) ± standard error | {accuracy['fp32']:.4f} ± {std_error['fp32']:.4f}"
        f" | {accuracy['bf16']:.4f} | {accuracy['bf16 verified']:.4f} | gap within the SE "
        f"{mark[ok_acc['bf16']]} / {mark[ok_acc['bf16 verified']]} |",
        f"| **identical greedy completions** | | **{same.mean():.2%}** | "
        f"**{same_verified.mean():.2%}** | >= 99% {mark[ok_same['bf16']]} / "
        f"{mark[ok_same['bf16 verified']]} |",
        f"| generation speed vs fp32 (median of per-chunk ratios) | 1.00x | "
        f"{time_ratio['bf16']:.2f}x | {time_ratio['bf16 verified']:.2f}x | |",
        f"| identical where fp32 is right / wrong | | {same[correct_fp32].mean():.2%} / "
        f"{same[~correct_fp32].mean():.2%} | {same_verified[correct_fp32].mean():.2%} / "
        f"{same_verified[~correct_fp32].mean():.2%} | |",
        f"| answer log-likelihood, median abs gap (nats) | | {loglik_gap.median():.4f} | | |",
        f"| answer log-likelihood, max abs gap (nats) | | {loglik_gap.max():.4f} | | |",
        "",
        f"Verification checked {stats.checked} of {stats.rows} completions in fp32 (one "
        f"teacher-forced forward over {stats.checked_tokens:,} tokens in all), corrected "
        f"{stats.corrected} and decoded on from the corrected token in {stats.rounds} rounds.",
        "",
        "Relative error of bf16 against fp32 after each layer, then of the logits (64 prompts): "
        + ", ".join(f"{e:.1e}" for e in errors) + ".",
        "",
        f"Accuracy gap bf16 - fp32: {gap:+.4f} (paired standard error {paired:.4f}); verified "
        f"{gap_verified:+.4f}. Speed: the three modes ran back to back on each chunk of "
        f"{args.chunk} prompts, 1 thread, on 2 cores shared with other work: the ratios hold, "
        "the seconds do not.",
    ])
    print(table)
    print(f"\nwritten to {write_result('precision_accuracy', figures, table)}")


if __name__ == "__main__":
    main()
