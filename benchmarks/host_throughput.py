"""Host throughput in fp32 and bf16 side by side: (a) training tokens/s and model FLOP
utilisation of the built-in host's shape against the fp32 and the bf16 matmul peaks measured in the
same run; (b) greedy generation tokens/s (batch 256, 32 new tokens) and log-likelihood tokens/s of
the built-in host in each precision, plus the KV cache against recomputing (fp32, batch 64).

Run: python benchmarks/host_throughput.py [--repeats 5] [--big]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import write_result

from evolora.hosts import load_host
from evolora.hosts.precision import autocast, resolve_precision, with_generation_probe
from evolora.hosts.train import build_model, make_optimizer
from evolora.hosts.train_config import HostTrainConfig, ModelShape
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


def timed_train_step(model, optimizer, rows, precision: str) -> float:
    """Seconds of one AdamW step (forward, backward, update) under `precision`'s autocast."""
    start = time.perf_counter()
    with autocast(rows.device, precision):
        logits = model(input_ids=rows).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().flatten(0, 1),
                                             rows[:, 1:].flatten())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def train_figures(label, config, shape, batch, seq, tokenizer, repeats) -> dict:
    """Training step time per precision and MFU against both peaks, all alternating."""
    torch.manual_seed(0)
    model = build_model(shape, tokenizer)
    model.train()
    optimizer = make_optimizer(model, config)
    rows = torch.randint(0, len(tokenizer), (batch, seq))
    flops = train_step_flops(model, batch, seq)
    for precision in ("fp32", "bf16"):  # warm-up
        timed_train_step(model, optimizer, rows, precision)
    print(f"timing {label} training steps and matmul peaks...", flush=True)
    steps = {"fp32": [], "bf16": []}
    peaks = {"fp32": [], "bf16": []}
    for _ in range(repeats):  # alternate peaks and steps so drift hits all alike
        peaks["fp32"].append(matmul_peak(torch.float32))
        steps["fp32"].append(timed_train_step(model, optimizer, rows, "fp32"))
        peaks["bf16"].append(matmul_peak(torch.bfloat16))
        steps["bf16"].append(timed_train_step(model, optimizer, rows, "bf16"))
    peak = {p: statistics.median(v) for p, v in peaks.items()}
    out = {"params": sum(p.numel() for p in model.parameters()), "batch": batch, "seq_len": seq,
           "fp32_peak_gflop_per_s": peak["fp32"] / 1e9, "bf16_peak_gflop_per_s": peak["bf16"] / 1e9,
           "bf16_speedup": statistics.median(
               a / b for a, b in zip(steps["fp32"], steps["bf16"], strict=True))}
    for precision, times in steps.items():
        achieved = flops / statistics.median(times)
        out[precision] = {"step_seconds": statistics.median(times),
                          "tokens_per_s": batch * seq / statistics.median(times),
                          "model_gflop_per_s": achieved / 1e9,
                          "mfu_vs_fp32_peak": achieved / peak["fp32"],
                          "mfu_vs_bf16_peak": achieved / peak["bf16"]}
    return out


def serving_figures(prompts, repeats) -> dict:
    """Generation and log-likelihood of the built-in host in fp32 and bf16, alternating."""
    hosts = {p: load_host("builtin", device="cpu", precision=p) for p in ("fp32", "bf16")}
    targets = [" " + p.split()[-1] for p in prompts]  # a short target per prompt

    def generate(host):
        out = host.generate(prompts, max_new_tokens=32, stop=(), batch_size=256)
        assert len(out) == len(prompts)

    def loglik(host):
        host.loglik(prompts, targets, batch_size=64)

    fns = {(w, p): (lambda f=f, h=h: f(h)) for w, f in (("generate", generate),
                                                        ("loglik", loglik))
           for p, h in hosts.items()}
    for fn in fns.values():
        fn()
    print("timing generation and log-likelihood in fp32 and bf16...", flush=True)
    seconds = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            seconds[key].append(timed(fn))
    lik_tokens = sum(len(t) for t in hosts["fp32"].tokenizer(
        [p + t for p, t in zip(prompts, targets, strict=True)])["input_ids"])
    counted = {"generate": len(prompts) * 32, "loglik": lik_tokens}
    out = {}
    for workload in ("generate", "loglik"):
        fp32, bf16 = seconds[(workload, "fp32")], seconds[(workload, "bf16")]
        out[workload] = {
            "fp32_tokens_per_s": counted[workload] / statistics.median(fp32),
            "bf16_tokens_per_s": counted[workload] / statistics.median(bf16),
            "bf16_speedup": statistics.median(a / b for a, b in zip(fp32, bf16, strict=True)),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median is kept)")
    parser.add_argument("--big", action="store_true",
                        help="also train a hidden-512 x 8-layer Llama (batch 8 x 128)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = load_config(CONFIG, HostTrainConfig)
    tokenizer = load_host("builtin", device="cpu").tokenizer
    auto = resolve_precision("auto", "cpu")
    builtin = load_host("builtin", device="cpu", precision="auto")
    auto_host = with_generation_probe(auto, builtin.model)

    # (a) training: the shipped config's shape, batch and sequence length, random tokens.
    shapes = [("built-in shape", config.model, config.optim.batch_size, config.data.seq_len)]
    if args.big:
        shapes.append(("Llama h512 x 8", ModelShape(hidden_size=512, intermediate_size=1376,
                                                    num_layers=8, num_heads=8, max_positions=256),
                       8, 128))
    train = {label: train_figures(label, config, shape, batch, seq, tokenizer, args.repeats)
             for label, shape, batch, seq in shapes}

    # (b) serving: 256 holdout prompts, 32 new tokens each (stop strings off), and the
    # log-likelihood of a short target per prompt.
    rng = np.random.default_rng(0)
    prompts = [e.prompt for e in TaskGrid.named("default").sample_batch(rng, 256, split="holdout")]
    serve = serving_figures(prompts, args.repeats)
    fp32_host = load_host("builtin", device="cpu", precision="fp32")
    cached, recomputed = [], []
    for use_cache in (True, False):  # warm-up
        fp32_host.generate(prompts[:64], max_new_tokens=32, stop=(), use_cache=use_cache)
    print("timing generation with and without the KV cache...", flush=True)
    for _ in range(args.repeats):
        cached.append(timed(lambda: fp32_host.generate(prompts[:64], max_new_tokens=32,
                                                       stop=(), use_cache=True)))
        recomputed.append(timed(lambda: fp32_host.generate(prompts[:64], max_new_tokens=32,
                                                           stop=(), use_cache=False)))
    cache_speedup = statistics.median(r / c for r, c in zip(recomputed, cached, strict=True))

    lines = [
        f"{args.repeats} alternating repeats after warm-up, medians; fp32 and bf16 (autocast, "
        "weights and AdamW state fp32) measured in the same run. MFU = model FLOPs (6N + 12·L·h·T "
        "per token) / the fp32 or bf16 matmul peak measured in the same run, alternating with the "
        "steps. Measured on 2 cores shared with other work: absolute figures drift, ratios hold.",
        "",
        "| training | precision | tokens/s | model GFLOP/s | MFU vs fp32 peak | "
        "MFU vs bf16 peak | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for label, fig in train.items():
        for precision in ("fp32", "bf16"):
            f = fig[precision]
            target = ""
            if precision == "bf16":
                target = f"≥ 30% of bf16 peak {'✓' if f['mfu_vs_bf16_peak'] >= 0.3 else '✗'}"
            lines.append(f"| {label} ({fig['params']:,} params, batch {fig['batch']} x "
                         f"{fig['seq_len']}) | {precision} | {f['tokens_per_s']:,.0f} | "
                         f"{f['model_gflop_per_s']:.1f} | {f['mfu_vs_fp32_peak']:.0%} | "
                         f"{f['mfu_vs_bf16_peak']:.0%} | {target} |")
    peaks = next(iter(train.values()))
    lines += [
        "",
        f"Matmul peaks (1024², same run): fp32 {peaks['fp32_peak_gflop_per_s']:.0f} GFLOP/s, "
        f"bf16 {peaks['bf16_peak_gflop_per_s']:.0f} GFLOP/s. bf16 training speed-up: "
        + ", ".join(f"{label} {fig['bf16_speedup']:.2f}x" for label, fig in train.items()) + ".",
        "",
        "| built-in host serving | fp32 tokens/s | bf16 tokens/s | bf16 speed-up |",
        "|---|---:|---:|---:|",
        "| generation (batch 256, 32 new, KV cache) | "
        f"{serve['generate']['fp32_tokens_per_s']:,.0f} | "
        f"{serve['generate']['bf16_tokens_per_s']:,.0f} | "
        f"{serve['generate']['bf16_speedup']:.2f}x |",
        f"| log-likelihood (256 prompts, batch 64) | {serve['loglik']['fp32_tokens_per_s']:,.0f} "
        f"| {serve['loglik']['bf16_tokens_per_s']:,.0f} | {serve['loglik']['bf16_speedup']:.2f}x |",
        "",
        f"KV cache against recomputing every step (fp32, 64 prompts, 32 new): "
        f"**{cache_speedup:.1f}x** (target >= 3x).",
        "",
        f"`precision: auto` on this machine: forwards {auto_host.name}, generation "
        f"{auto_host.generation or auto_host.name}. {auto_host.reason}",
    ]
    table = "\n".join(lines)
    print(table)
    figures = {"train": train, "serving": serve, "kv_cache_speedup": cache_speedup,
               "auto": auto_host.record()}
    path = write_result("host_throughput", figures, table)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
