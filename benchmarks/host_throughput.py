"""Host throughput: (a) training tokens/s and model FLOP utilisation of the built-in host's shape
against the fp32 (and bf16) matmul peak measured in the same run; (b) greedy generation tokens/s
with the KV cache against recomputing the whole sequence each step (32 new tokens, batch 256).

Run: python benchmarks/host_throughput.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import write_result

from evolora.hosts import load_host
from evolora.hosts.train import build_model, make_optimizer
from evolora.hosts.train_config import HostTrainConfig
from evolora.tasks import TaskGrid
from evolora.telemetry import load_config

CONFIG = "configs/host_builtin.yaml"


def matmul_peak(dtype: torch.dtype, size: int = 1024, reps: int = 10) -> float:
    """Best-case FLOP/s of one square matmul in `dtype` (median of `reps` timed calls)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def train_step_flops(model: torch.nn.Module, batch: int, seq: int) -> float:
    """Model FLOPs of one training step: 6 per matmul weight per token plus attention scores
    (PaLM appendix B / nanoGPT's estimate_mfu: 6N + 12 L h T per token)."""
    config = model.config
    matmul_params = sum(p.numel() for p in model.parameters() if p.dim() == 2)
    per_token = 6 * matmul_params + 12 * config.num_hidden_layers * config.hidden_size * seq
    return per_token * batch * seq


def timed_train_step(model, optimizer, rows) -> float:
    start = time.perf_counter()
    loss = model(input_ids=rows, labels=rows).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def timed_generate(host, prompts, use_cache: bool) -> float:
    start = time.perf_counter()
    out = host.generate(prompts, max_new_tokens=32, stop=(), batch_size=256, use_cache=use_cache)
    elapsed = time.perf_counter() - start
    assert len(out) == len(prompts)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median is kept)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = load_config(CONFIG, HostTrainConfig)
    host = load_host("builtin", device="cpu")

    # (a) training: the shipped config's shape, batch and sequence length, random tokens.
    torch.manual_seed(0)
    model = build_model(config.model, host.tokenizer)
    model.train()
    optimizer = make_optimizer(model, config)
    batch, seq = config.optim.batch_size, config.data.seq_len
    rows = torch.randint(0, len(host.tokenizer), (batch, seq))
    flops = train_step_flops(model, batch, seq)
    timed_train_step(model, optimizer, rows)  # warm-up
    print("timing training steps and matmul peaks...", flush=True)
    step_times, fp32_peaks, bf16_peaks = [], [], []
    for _ in range(args.repeats):  # alternate peak and training so drift hits both alike
        fp32_peaks.append(matmul_peak(torch.float32))
        step_times.append(timed_train_step(model, optimizer, rows))
        bf16_peaks.append(matmul_peak(torch.bfloat16, size=512, reps=3))
    step = statistics.median(step_times)
    fp32_peak, bf16_peak = statistics.median(fp32_peaks), statistics.median(bf16_peaks)
    achieved = flops / step
    train = {
        "params": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "seq_len": seq,
        "step_seconds": step,
        "tokens_per_s": batch * seq / step,
        "model_gflop_per_s": achieved / 1e9,
        "fp32_peak_gflop_per_s": fp32_peak / 1e9,
        "bf16_peak_gflop_per_s": bf16_peak / 1e9,
        "mfu_vs_fp32_peak": achieved / fp32_peak,
    }

    # (b) generation: 256 holdout prompts, exactly 32 new tokens each (stop strings off).
    rng = np.random.default_rng(0)
    prompts = [e.prompt for e in TaskGrid.named("default").sample_batch(rng, 256, split="holdout")]
    print("timing generation with and without the KV cache...", flush=True)
    timed_generate(host, prompts, True)
    timed_generate(host, prompts, False)
    cached, recomputed = [], []
    for _ in range(args.repeats):
        cached.append(timed_generate(host, prompts, True))
        recomputed.append(timed_generate(host, prompts, False))
    new_tokens = 256 * 32
    gen = {
        "batch": 256,
        "new_tokens": 32,
        "cached_tokens_per_s": new_tokens / statistics.median(cached),
        "recompute_tokens_per_s": new_tokens / statistics.median(recomputed),
        "speedup": statistics.median(r / c for r, c in zip(recomputed, cached, strict=True)),
    }

    table = "\n".join(
        [
            f"Built-in host shape ({train['params']:,} params), fp32, {args.repeats} alternating "
            "repeats after warm-up, medians. MFU = model FLOPs (6N + 12·L·h·T per token) / "
            "fp32 matmul peak measured in the same run.",
            "",
            "| measure | value | target |",
            "|---|---:|---:|",
            f"| training tokens/s (batch {batch} x {seq}) | {train['tokens_per_s']:,.0f} | |",
            f"| model GFLOP/s | {train['model_gflop_per_s']:.1f} | |",
            f"| fp32 matmul peak GFLOP/s | {train['fp32_peak_gflop_per_s']:.1f} | |",
            f"| bf16 matmul peak GFLOP/s | {train['bf16_peak_gflop_per_s']:.1f} | |",
            f"| **MFU vs fp32 peak** | **{train['mfu_vs_fp32_peak']:.0%}** | >= 30% |",
            f"| generation tokens/s, KV cache (batch 256, 32 new) | "
            f"{gen['cached_tokens_per_s']:,.0f} | |",
            f"| generation tokens/s, recompute (no cache) | "
            f"{gen['recompute_tokens_per_s']:,.0f} | |",
            f"| **KV cache speed-up** | **{gen['speedup']:.1f}x** | >= 3x |",
        ]
    )
    if bf16_peak < fp32_peak:
        table += (
            "\n\nbf16 autocast is not used: on this CPU the bf16 matmul peak is below fp32's "
            "(no AVX512-BF16 / AMX units)."
        )
    print(table)
    path = write_result("host_throughput", {"train": train, "generation": gen}, table)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
