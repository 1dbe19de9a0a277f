"""Host throughput in fp32 and bf16 side by side: (a) training tokens/s and model FLOP
utilisation of the built-in host's shape, with sdpa and with eager attention, against the fp32 and
the bf16 matmul peaks measured in the same run on the same clock; (b) greedy generation tokens/s
(batch 256, 32 new tokens) and log-likelihood tokens/s of the built-in host in each precision, plus
the KV cache against recomputing (fp32, batch 64).

`--clock cpu` (the default) times everything by the process's CPU time, so waiting for a core of
a shared machine does not count; with `--threads 1` (the default) that is one core's work.

Run: python benchmarks/host_throughput.py [--repeats 5] [--big] [--clock cpu|wall] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from _common import CLOCKS, write_result

from evolora.hosts import load_host
from evolora.hosts.attention import PROBE_ROWS, resolve_attention, set_attention
from evolora.hosts.precision import resolve_precision, with_generation_probe
from evolora.hosts.train import build_model, forward_backward, make_optimizer
from evolora.hosts.train_config import HostTrainConfig, ModelShape
from evolora.tasks import TaskGrid
from evolora.telemetry import load_config

CONFIG = "configs/host_builtin.yaml"
clock = CLOCKS["cpu"]  # set from --clock in main()
ATTENTIONS = ("sdpa", "eager")


def matmul_peak(dtype: torch.dtype, size: int = 1024, reps: int = 10) -> float:
    """Best-case FLOP/s of one square matmul in `dtype` (median of `reps` timed calls)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        start = clock()
        a @ b
        times.append(clock() - start)
    return 2 * size**3 / statistics.median(times)


def train_step_flops(model: torch.nn.Module, batch: int, seq: int) -> float:
    """Model FLOPs of one training step: 6 per matmul weight per token plus attention scores
    (PaLM appendix B / nanoGPT's estimate_mfu: 6N + 12 L h T per token)."""
    config = model.config
    matmul_params = sum(p.numel() for p in model.parameters() if p.dim() == 2)
    per_token = 6 * matmul_params + 12 * config.num_hidden_layers * config.hidden_size * seq
    return per_token * batch * seq


def timed_train_step(model, optimizer, rows, weights, precision: str, attention: str) -> float:
    """Seconds of one step of `evolora host train` (forward, backward, gradient clipping, AdamW
    update) under `precision` with `attention`."""
    set_attention(model, attention)
    start = clock()
    forward_backward(model, rows, weights, precision)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return clock() - start


def timed(fn) -> float:
    start = clock()
    fn()
    return clock() - start


def train_figures(label, config, shape, batch, seq, tokenizer, repeats,
                  precisions=("fp32", "bf16")) -> dict:
    """Training step time per precision and attention kernel, MFU against both peaks, all
    alternating; and the kernel `evolora host train`'s auto probe picks in bf16."""
    torch.manual_seed(0)
    model = build_model(shape, tokenizer)
    model.train()
    optimizer = make_optimizer(model, config)
    rows = torch.randint(0, len(tokenizer), (batch, seq + 1))
    weights = torch.ones(rows.shape)
    flops = train_step_flops(model, batch, seq)
    variants = [(p, a) for p in precisions for a in ATTENTIONS]
    for precision, attention in variants:  # warm-up
        timed_train_step(model, optimizer, rows, weights, precision, attention)
    auto = resolve_attention("auto", model, rows[:PROBE_ROWS], lambda r: forward_backward(
        model, r, weights[: len(r)], "bf16"))
    print(f"timing {label} training steps and matmul peaks...", flush=True)
    steps = {v: [] for v in variants}
    peaks = {"fp32": [], "bf16": []}
    for _ in range(repeats):  # alternate peaks and steps so drift hits all alike
        for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            peaks[precision].append(matmul_peak(dtype))
            for attention in ATTENTIONS if precision in precisions else ():
                steps[(precision, attention)].append(timed_train_step(
                    model, optimizer, rows, weights, precision, attention))
    peak = {p: statistics.median(v) for p, v in peaks.items()}

    def ratio(slow, fast):
        return statistics.median(a / b for a, b in zip(steps[slow], steps[fast], strict=True))

    out = {"params": sum(p.numel() for p in model.parameters()), "batch": batch, "seq_len": seq,
           "fp32_peak_gflop_per_s": peak["fp32"] / 1e9, "bf16_peak_gflop_per_s": peak["bf16"] / 1e9,
           "bf16_speedup": {a: ratio(("fp32", a), ("bf16", a)) for a in ATTENTIONS
                            if len(precisions) == 2},
           "eager_speedup": {p: ratio((p, "sdpa"), (p, "eager")) for p in precisions},
           "auto_attention": auto.record(), "steps": {}}
    for (precision, attention), times in steps.items():
        achieved = flops / statistics.median(times)
        out["steps"][f"{precision} {attention}"] = {
            "step_seconds": statistics.median(times),
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


def serving_part(repeats: int) -> tuple[list[str], dict]:
    """Generation and log-likelihood in both precisions, the KV cache against recomputing, and
    what `precision: auto` picks: table lines and figures."""
    auto = resolve_precision("auto", "cpu")
    builtin = load_host("builtin", device="cpu", precision="auto")
    auto_host = with_generation_probe(auto, builtin.model)
    # 256 holdout prompts, 32 new tokens each (stop strings off), and the log-likelihood of a
    # short target per prompt.
    rng = np.random.default_rng(0)
    prompts = [e.prompt for e in TaskGrid.named("default").sample_batch(rng, 256, split="holdout")]
    serve = serving_figures(prompts, repeats)
    fp32_host = load_host("builtin", device="cpu", precision="fp32")
    cached, recomputed = [], []
    for use_cache in (True, False):  # warm-up
        fp32_host.generate(prompts[:64], max_new_tokens=32, stop=(), use_cache=use_cache)
    print("timing generation with and without the KV cache...", flush=True)
    for _ in range(repeats):
        cached.append(timed(lambda: fp32_host.generate(prompts[:64], max_new_tokens=32,
                                                       stop=(), use_cache=True)))
        recomputed.append(timed(lambda: fp32_host.generate(prompts[:64], max_new_tokens=32,
                                                           stop=(), use_cache=False)))
    cache_speedup = statistics.median(r / c for r, c in zip(recomputed, cached, strict=True))
    lines = [
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
    return lines, {"serving": serve, "kv_cache_speedup": cache_speedup,
                   "auto": auto_host.record()}


def train_lines(train: dict) -> list[str]:
    """The training table and its notes."""
    lines = [
        "| training | precision | attention | tokens/s | model GFLOP/s | MFU vs fp32 peak | "
        "MFU vs bf16 peak | target |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for label, fig in train.items():
        chosen = fig["auto_attention"]["attention"]
        for key, f in fig["steps"].items():
            precision, attention = key.split()
            target = ""
            if precision == "bf16" and attention == chosen:
                target = (f"≥ 30% of bf16 peak {'✓' if f['mfu_vs_bf16_peak'] >= 0.3 else '✗'} "
                          "(the kernel auto picks)")
            lines.append(f"| {label} ({fig['params']:,} params, batch {fig['batch']} x "
                         f"{fig['seq_len']}) | {precision} | {attention} | "
                         f"{f['tokens_per_s']:,.0f} | "
                         f"{f['model_gflop_per_s']:.1f} | {f['mfu_vs_fp32_peak']:.0%} | "
                         f"{f['mfu_vs_bf16_peak']:.0%} | {target} |")
    peaks = next(iter(train.values()))
    speedups = []
    for label, fig in train.items():
        parts = [f"eager over sdpa {r:.2f}x ({p})" for p, r in fig["eager_speedup"].items()]
        parts += [f"bf16 over fp32 {r:.2f}x ({a})" for a, r in fig["bf16_speedup"].items()]
        speedups.append(f"{label}: " + ", ".join(parts))
    return [
        *lines,
        "",
        f"Matmul peaks (1024², same run and clock): fp32 {peaks['fp32_peak_gflop_per_s']:.0f} "
        f"GFLOP/s, bf16 {peaks['bf16_peak_gflop_per_s']:.0f} GFLOP/s. Training speed-ups "
        "(median of per-repeat ratios): " + "; ".join(speedups) + ".",
        "",
        "`evolora host train`'s attention probe (`optim.attention: auto`, bf16): "
        + "; ".join(f"{label}: {fig['auto_attention']['attention_reason']}"
                    for label, fig in train.items()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median is kept)")
    parser.add_argument("--big", action="store_true",
                        help="also train a hidden-512 x 8-layer Llama (batch 8 x 128)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                        help="cpu: the process's CPU time (waiting for a shared core does not "
                             "count); wall: elapsed time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16"], help="training precisions timed")
    parser.add_argument("--train-only", action="store_true",
                        help="only the training part (results under host_throughput_train)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]
    config = load_config(CONFIG, HostTrainConfig)
    tokenizer = load_host("builtin", device="cpu").tokenizer

    # (a) training: the shipped config's shape, batch and sequence length, random tokens.
    shapes = [("built-in shape", config.model, config.optim.batch_size, config.data.seq_len)]
    if args.big:
        shapes.append(("Llama h512 x 8", ModelShape(hidden_size=512, intermediate_size=1376,
                                                    num_layers=8, num_heads=8, max_positions=256),
                       8, 128))
    train = {label: train_figures(label, config, shape, batch, seq, tokenizer, args.repeats,
                                  args.precisions)
             for label, shape, batch, seq in shapes}
    timing = ("the process's CPU time (time.process_time: waiting for a core of the shared "
              "machine does not count, contention for caches and memory does)"
              if args.clock == "cpu" else "wall-clock time")
    lines = [
        f"{args.repeats} alternating repeats after warm-up, medians, {args.threads} torch "
        f"thread(s), timed by {timing}. Training in {' and '.join(args.precisions)} (autocast, "
        "weights and AdamW state fp32), with sdpa and eager attention, in the same run; a step "
        "is `evolora host train`'s (forward, backward, gradient clipping, AdamW). MFU = model "
        "FLOPs (6N + 12·L·h·T per token) / the fp32 or bf16 matmul peak measured in the same run "
        "on the same clock, alternating with the steps. Measured on 2 cores shared with other "
        "work (this process at nice 15): absolute figures drift, ratios hold.",
        "",
        *train_lines(train),
    ]
    figures = {"clock": args.clock, "threads": args.threads, "train": train}
    if not args.train_only:
        serve_lines, serve = serving_part(args.repeats)
        lines += serve_lines
        figures |= serve
    table = "\n".join(lines)
    print(table)
    name = "host_throughput_train" if args.train_only else "host_throughput"
    path = write_result(name, figures, table)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
