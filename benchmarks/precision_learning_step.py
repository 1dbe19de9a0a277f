"""Seconds per LoRA learning step of the built-in host in fp32, under plain bf16 autocast, and
under the host's bf16 policy, side by side.

The step is the ecology's backprop rule's: one organelle's batch of train examples, its mean
per-token answer log-likelihood through a population of adapters (`answer_logprobs`), and the
backward pass to the fp32 factor tables (`factor_gradients`).

Claim (issue 13): the LoRA population's learning step is faster in bf16 than in fp32.

Run: python benchmarks/precision_learning_step.py [--repeats 7] [--organelles 16] [--rank 4]
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np
import torch
from _common import write_result

from evolora.ecology.learning.backprop import factor_gradients
from evolora.ecology.learning.base import answer_logprobs
from evolora.hosts import Host, load_host
from evolora.hosts.precision import resolve_precision
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid


class AutocastHost:
    """The fp32 host's forwards under plain `torch.autocast` (bf16 matmuls, weights re-cast at
    every call, attention and elementwise ops in bf16): the baseline the bf16 policy replaces."""

    def __init__(self, host: Host) -> None:
        self.model, self.tokenizer = host.model, host.tokenizer

    @contextmanager
    def autocast(self, generation: bool = False):
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16):
            yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="alternating timed repeats")
    parser.add_argument("--organelles", type=int, default=16, help="adapters in the population")
    parser.add_argument("--rank", type=int, default=4, help="LoRA rank")
    parser.add_argument("--batch", type=int, default=16, help="examples per learning step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fp32 = load_host("builtin", device="cpu", precision="fp32")
    hosts = {"fp32": fp32, "bf16 autocast": AutocastHost(fp32),
             "bf16 policy": Host(fp32.model, fp32.tokenizer, fp32.name,
                                 resolve_precision("bf16", fp32.device))}
    population = LoRAPopulation(fp32, n=args.organelles, rank=args.rank, alpha=2 * args.rank,
                                seed=0)
    examples = TaskGrid.named("default").sample_batch(np.random.default_rng(0), args.batch,
                                                      "train")
    slot = args.organelles // 2

    def step(host) -> float:
        start = time.perf_counter()
        with factor_gradients(population):
            per_token = answer_logprobs(host, population, examples, [slot] * len(examples))
            (-per_token.mean()).backward()
        return time.perf_counter() - start

    for host in hosts.values():  # warm-up
        step(host)
    seconds: dict[str, list[float]] = {name: [] for name in hosts}
    for _ in range(args.repeats):
        for name, host in hosts.items():
            seconds[name].append(step(host))
    ratio = {name: float(np.median(np.array(seconds["fp32"]) / np.array(times)))
             for name, times in seconds.items()}
    figures = {"args": vars(args), "seconds": seconds,
               "median_seconds": {n: float(np.median(t)) for n, t in seconds.items()},
               "speedup_vs_fp32": ratio}
    rows = [f"| {name} | {np.median(times):.3f} | {ratio[name]:.2f}x |"
            for name, times in seconds.items()]
    table = "\n".join([
        f"One backprop learning step of the ecology (population of {args.organelles} adapters, "
        f"rank {args.rank}, one organelle's {args.batch} train examples: answer log-likelihood "
        f"and backward to the fp32 factors), built-in host, {args.repeats} alternating repeats "
        "after a warm-up.",
        "",
        "| precision | s/step (median) | speed-up vs fp32 (median of per-repeat ratios) |",
        "|---|---:|---:|",
        *rows,
        "",
        "bf16 autocast = plain `torch.autocast` over the fp32 host; bf16 policy = the host's "
        "bf16 precision (bf16 copies of the frozen linear weights made once per call, bf16 "
        "products, fp32 between them and for the factors). Measured on 2 cores shared with other "
        "work: the seconds drift, the ratios are what holds.",
    ])
    print(table)
    print(f"\nwritten to {write_result('precision_learning_step', figures, table)}")


if __name__ == "__main__":
    main()
