"""Throughput of 16 LoRA adapters served together: evolora's population against PEFT and bare.

Claim (issues 5 and 13): on the same prompts and tokens, evolora's batched population (a) reaches
at least 5x the tokens/s of PEFT switching adapters one after another (c), at least 2x PEFT's
mixed-adapter batch (b), and at least 0.75x the bare host (d) -- in fp32 and in bf16, every method
in the same precision (bf16: `evolora.hosts.precision.run_in`, i.e. bf16 products in the frozen
linear layers with bf16 copies of their weights, fp32 everything between them; PEFT's adapters
become bf16 too, the population's stay fp32).

Workloads, each over 16 adapters x P prompts (rows grouped by adapter):
- loglik: one forward over every row of ~32 tokens (what `Host.loglik` runs);
- generate: greedy generation with a KV cache (prefill 16 tokens, then 32 new tokens per row).
- fitness (population_fitness.py): the ecology's ES / compose fitness call through `Host.loglik`
  on real task prompts, at the rows per adapter and adapter counts the ecology uses.
Methods and precisions alternate inside every repeat after a warm-up; the median of the repeats
is reported. Generation uses the host's own preallocated KV cache. A kernel sweep (gather vs
segmented, prefill and decode, batch 16-256) backs the kernel choice.

Run: python benchmarks/population_throughput.py [--full] [--sweep] [--threads 1] [--clock cpu]
     [--no-fitness]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLOCKS, write_result

from evolora.errors import EvoloraError
from evolora.hosts.generation import preallocated_cache
from evolora.hosts.precision import run_in
from evolora.lora import LoRAPopulation

ROOT = Path(__file__).resolve().parents[1]
N_ADAPTERS, RANK, ALPHA = 16, 8, 16
TARGETS = {"(a) vs (c)": 5.0, "(a) vs (b)": 2.0, "(a) vs (d)": 0.75}


def builtin_model() -> tuple[LlamaForCausalLM, str]:
    """The built-in host's model, or a random-init Llama of its shape when it is not shipped."""
    try:
        from evolora.hosts import load_host

        host = load_host("builtin", device="cpu")
        return host.model, "builtin host"
    except (EvoloraError, ImportError) as problem:
        import yaml

        from evolora.hosts.train_config import ModelShape

        spec = yaml.safe_load((ROOT / "configs" / "host_builtin.yaml").read_text())
        shape = ModelShape(**spec["model"])
        vocab = spec["tokenizer"]["vocab_size"]
        print(f"note: built-in host unavailable ({problem}); using a random-init Llama of its "
              f"shape from configs/host_builtin.yaml (hidden {shape.hidden_size}, "
              f"{shape.num_layers} layers, vocab {vocab}).")
        return random_llama(shape.hidden_size, shape.intermediate_size, shape.num_layers,
                            shape.num_heads, vocab=vocab), "builtin-shape random Llama"


def random_llama(hidden: int, intermediate: int, layers: int, heads: int, vocab: int):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=heads, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval().requires_grad_(False)


def make_population(model) -> LoRAPopulation:
    """16 adapters with non-zero B, so every adapter really changes the output."""
    pop = LoRAPopulation(model, n=N_ADAPTERS, rank=RANK, alpha=ALPHA, seed=0)
    pop.mutate(range(N_ADAPTERS), sigma=0.02, generator=1)
    return pop


def make_peft(base, pop: LoRAPopulation):
    """A PEFT model over `base` holding the same 16 adapters as a0..a15."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=list(pop.targets))
    peft_model = get_peft_model(base, config, adapter_name="a0")
    for i in range(1, N_ADAPTERS):
        peft_model.add_adapter(f"a{i}", config)
    for name, module in peft_model.base_model.model.named_modules():
        if name in pop.A:
            for i in range(N_ADAPTERS):
                module.lora_A[f"a{i}"].weight.data.copy_(pop.A[name][i])
                module.lora_B[f"a{i}"].weight.data.copy_(pop.B[name][i])
    return peft_model.eval().requires_grad_(False)


@torch.no_grad()
def forward(model, ids: torch.Tensor, **kwargs) -> torch.Tensor:
    """Logits of the last 8 positions, as `Host.loglik` keeps only the target's positions."""
    return model(input_ids=ids, logits_to_keep=8, **kwargs).logits


@torch.no_grad()
def greedy(model, ids: torch.Tensor, new_tokens: int, **kwargs) -> torch.Tensor:
    """Greedy tokens [batch, new_tokens] with the host's preallocated KV cache (no early stop:
    fixed token count)."""
    cache = preallocated_cache(ids.shape[1] + new_tokens)
    step, out = ids, []
    for _ in range(new_tokens):
        logits = model(input_ids=step, past_key_values=cache, use_cache=True, logits_to_keep=1,
                       **kwargs).logits
        step = logits[:, -1].argmax(-1, keepdim=True)
        out.append(step)
    return torch.cat(out, dim=1)


clock = CLOCKS["cpu"]  # set from --clock in main()


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function in every repeat, alternating after a warm-up."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return times


def methods(model, bare, peft_model, pop, prompts_per_adapter: int, run, precision: str) -> dict:
    """The four ways to serve 16 adapters on the same rows in `precision`, as zero-argument
    callables."""
    ids = [i for i in range(N_ADAPTERS) for _ in range(prompts_per_adapter)]
    names = [f"a{i}" for i in ids]

    def population():
        with run_in(model, precision), pop.route(ids):
            return run(model)

    def peft_switching():
        out = []
        with run_in(peft_model, precision):
            for i in range(N_ADAPTERS):
                peft_model.set_adapter(f"a{i}")
                rows = slice(i * prompts_per_adapter, (i + 1) * prompts_per_adapter)
                out.append(run(peft_model, rows=rows))
        return out

    def peft_mixed():
        with run_in(peft_model, precision):
            return run(peft_model, adapter_names=names)

    def bare_host():
        with run_in(bare, precision):
            return run(bare)

    return {
        "(a) population": population,
        "(b) PEFT mixed batch": peft_mixed,
        "(c) PEFT switching": peft_switching,
        "(d) bare": bare_host,
    }


def measure_model(label: str, model, workloads: list[tuple], repeats: int, rows: list,
                  precisions: list[str], speedups: list[str]) -> dict:
    """Time the four methods on every workload in every precision; append table rows."""
    mine_names = ["(a) population", "(b) PEFT mixed batch", "(c) PEFT switching", "(d) bare"]
    bare = copy.deepcopy(model)
    pop = make_population(model)
    peft_model = make_peft(copy.deepcopy(bare), pop)
    figures = {}
    vocab = model.config.vocab_size
    for workload, prompts_per_adapter, prompt_len, new_tokens in workloads:
        batch = N_ADAPTERS * prompts_per_adapter
        gen = torch.Generator().manual_seed(0)
        prompts = torch.randint(3, vocab, (prompts_per_adapter, prompt_len), generator=gen)
        tokens = prompts.repeat(N_ADAPTERS, 1)  # the same prompts for every adapter

        def run(m, rows=slice(None), _new=new_tokens, _tokens=tokens, **kwargs):
            if _new:
                return greedy(m, _tokens[rows], _new, **kwargs)
            return forward(m, _tokens[rows], **kwargs)

        fns, checks = {}, {}
        for precision in precisions:
            mine = methods(model, bare, peft_model, pop, prompts_per_adapter, run, precision)
            checks[precision] = _agreement(mine)
            fns.update({(precision, name): fn for name, fn in mine.items()})
        seconds = timed(fns, repeats)  # every method in every precision, alternating
        counted = batch * (new_tokens or prompt_len)
        for precision in precisions:
            times = {name: seconds[(p, name)] for p, name in seconds if p == precision}
            tps = {name: counted / statistics.median(s) for name, s in times.items()}
            # Each ratio is the median over repeats of the ratio within a repeat (methods run back
            # to back), which cancels most of the drift of a shared machine; the range shows the
            # rest.
            mine = times["(a) population"]
            ratios, spread = {}, {}
            for target, other in zip(TARGETS, ["(c) PEFT switching", "(b) PEFT mixed batch",
                                               "(d) bare"], strict=True):
                per_repeat = [o / a for o, a in zip(times[other], mine, strict=True)]
                ratios[target] = statistics.median(per_repeat)
                spread[target] = (min(per_repeat), max(per_repeat))
            # (a)/(c) = (a)/(d) x (d)/(c): with the population as fast as the bare host, (a)/(c)
            # would be (d)/(c), the ceiling no population overhead trimming can pass.
            ceiling = statistics.median(c / d for c, d in zip(
                times["(c) PEFT switching"], times["(d) bare"], strict=True))
            key = f"{label} | {workload} | {batch} | {precision}"
            figures[key] = {"batch": batch, "prompt_tokens": prompt_len, "new_tokens": new_tokens,
                            "precision": precision, "tokens_per_s": tps, "seconds": times,
                            "ratios": ratios, "ratio_range": spread,
                            "bare_vs_peft_switching": ceiling,
                            "agreement_a_b": checks[precision]}
            rows.append(f"| {label} | {workload} | {batch} | {precision} | " + " | ".join(
                f"{tps[m]:,.0f}" for m in tps) + " | " + " | ".join(
                f"{ratios[k]:.2f}x {'✓' if ratios[k] >= TARGETS[k] else '✗'} "
                f"({spread[k][0]:.2f}–{spread[k][1]:.2f})" for k in TARGETS)
                + f" | {ceiling:.2f}x |")
            print(rows[-1], flush=True)
        if len(precisions) == 2:
            speedup = {name: statistics.median(
                a / b for a, b in zip(seconds[("fp32", name)], seconds[("bf16", name)],
                                      strict=True)) for name in mine_names}
            figures[f"{label} | {workload} | {batch} | bf16 speed-up"] = speedup
            speedups.append(f"| {label} | {workload} | {batch} | " + " | ".join(
                f"{speedup[m]:.2f}x" for m in mine_names) + " |")
    pop.detach()
    return figures


def _agreement(fns: dict) -> float:
    """Max |logit| difference between (a) and (b) on the workload (both must compute the same)."""
    out_a, out_b = fns["(a) population"](), fns["(b) PEFT mixed batch"]()
    if out_a.dtype == torch.long:  # generated tokens: report the share of differing tokens
        return float((out_a != out_b).float().mean())
    return float((out_a - out_b).abs().max())


@torch.no_grad()
def kernel_sweep(model, repeats: int, rows: list) -> dict:
    """Time one population forward per kernel, layout and batch: prefill (32 tokens per row) and
    one decode step (1 token per row over a 32-token KV cache)."""
    pop = make_population(model)
    figures = {}
    vocab = model.config.vocab_size
    for batch in (16, 64, 128, 256):
        per = batch // N_ADAPTERS
        layouts = {"grouped": [i for i in range(N_ADAPTERS) for _ in range(per)],
                   "interleaved": [i for _ in range(per) for i in range(N_ADAPTERS)]}
        tokens = torch.randint(3, vocab, (batch, 33), generator=torch.Generator().manual_seed(1))
        for layout, ids in layouts.items():
            seconds = timed(_sweep_calls(model, pop, tokens, ids), repeats)
            for phase in ("prefill", "decode"):
                g = statistics.median(seconds[f"{phase}/gather"])
                s = statistics.median(seconds[f"{phase}/segmented"])
                figures[f"{phase}|{layout}|{batch}"] = {"gather_s": g, "segmented_s": s}
                faster = "segmented" if s < g else "gather"
                rows.append(f"| {phase} | {layout} | {batch} | {g * 1e3:.1f} | {s * 1e3:.1f} | "
                            f"{faster} ({max(g, s) / min(g, s):.2f}x) |")
                print(rows[-1], flush=True)
    pop.detach()
    return figures


def _sweep_calls(model, pop: LoRAPopulation, tokens: torch.Tensor, ids: list[int]) -> dict:
    """{"prefill/gather": fn, ...}: one routed forward per phase and kernel."""
    cache = DynamicCache()
    model(input_ids=tokens[:, :32], past_key_values=cache, use_cache=True, logits_to_keep=1)

    def prefill():
        model(input_ids=tokens[:, :32], logits_to_keep=1)

    def decode():
        model(input_ids=tokens[:, 32:], past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.crop(-1)  # drop the token just added

    def routed(kernel: str, call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            pop.kernel = kernel
            with pop.route(ids):
                call()
        return run

    return {f"{phase}/{kernel}": routed(kernel, call)
            for phase, call in (("prefill", prefill), ("decode", decode))
            for kernel in ("gather", "segmented")}


def fitness_section(args, figures: dict) -> str:
    """Time the ecology's fitness call (population_fitness.py) on the built-in host; its table."""
    from population_fitness import POPULATION, measure_fitness
    from population_fitness import RANK as FITNESS_RANK

    from evolora.hosts import load_host

    try:
        host = load_host("builtin", device="cpu")
    except EvoloraError as problem:
        return f"\nThe fitness workload needs the built-in host and was skipped ({problem})."
    header = (f"\nThe ecology's ES / compose fitness call (`Host.loglik` on real task prompts, "
              f"a population of {POPULATION} slots of rank {FITNESS_RANK} as the default preset "
              "with `rules: [es]` holds, 16 perturbed adapters per learning organelle, its "
              "examples under each; (c) scores each adapter's rows through PEFT after "
              "`set_adapter`):\n\n| organelles learning | adapters | rows per adapter | rows "
              "| precision | (a) population tok/s | (c) PEFT switching tok/s | (d) bare tok/s | "
              "(a)/(c) | (a)/(d) | (d)/(c) |\n|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
              "---:|")
    print(header, flush=True)
    rows: list[str] = []
    figures["fitness"] = measure_fitness(host, timed, args.repeats, rows, args.precisions)
    return header + "\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the 2 shared cores are usually busy)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per method (>= 5)")
    parser.add_argument("--full", action="store_true", help="also a hidden-512 x 8-layer Llama")
    parser.add_argument("--sweep", action="store_true", help="also the kernel sweep")
    parser.add_argument("--sweep-only", action="store_true", help="only the kernel sweep")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                        help="cpu: the process's CPU time (waiting for a shared core does not "
                             "count; meant for --threads 1); wall: elapsed time")
    parser.add_argument("--fitness", action=argparse.BooleanOptionalAction, default=True,
                        help="also the ecology's ES / compose fitness call through Host.loglik "
                             "(population_fitness.py)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16"], help="precisions compared side by side")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]

    builtin, builtin_label = builtin_model()
    if args.sweep_only:
        rows: list[str] = []
        kernel_sweep(builtin, args.repeats, rows)
        return
    models = [(builtin_label, builtin, [("loglik", 4, 32, 0), ("loglik", 8, 32, 0),
                                        ("generate", 4, 16, 32)])]
    if args.full:
        big = random_llama(512, 1376, 8, 8, vocab=1536)
        models.append(("Llama h512 x 8 layers", big, [("loglik", 4, 32, 0),
                                                       ("generate", 4, 16, 32)]))
    header = ("| model | workload | rows | precision | (a) population tok/s | "
              "(b) PEFT mixed tok/s | "
              "(c) PEFT switching tok/s | (d) bare tok/s | (a)/(c) ≥ 5 | (a)/(b) ≥ 2 | "
              "(a)/(d) ≥ 0.75 | (d)/(c): ceiling of (a)/(c) |"
              "\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows: list[str] = []
    speedups: list[str] = []
    print(header)
    figures = {"threads": args.threads, "repeats": args.repeats, "clock": args.clock,
               "adapters": N_ADAPTERS,
               "rank": RANK, "throughput": {}}
    for label, model, workloads in models:
        figures["throughput"].update(measure_model(label, model, workloads, args.repeats, rows,
                                                   args.precisions, speedups))
    table = header + "\n" + "\n".join(rows)
    if speedups:
        table += ("\n\nbf16 speed-up of each method (fp32 time / bf16 time, median of per-repeat "
                  "ratios):\n\n| model | workload | rows | (a) population | (b) PEFT mixed | "
                  "(c) PEFT switching | (d) bare |\n|---|---|---:|---:|---:|---:|---:|\n"
                  + "\n".join(speedups))
    if args.fitness:
        table += "\n" + fitness_section(args, figures)
    if args.sweep:
        sweep_rows: list[str] = []
        sweep_header = (f"\nKernel sweep on the {builtin_label} (16 adapters, ms per forward, "
                        "median):\n\n| phase | layout | rows | gather ms | segmented ms | faster |"
                        "\n|---|---|---:|---:|---:|---|")
        print(sweep_header)
        figures["kernel_sweep"] = kernel_sweep(builtin, args.repeats, sweep_rows)
        table += "\n" + sweep_header + "\n" + "\n".join(sweep_rows)
    note = (f"\n\n16 adapters (rank {RANK}, all 7 projections), the same prompts for every adapter,"
            f" {args.threads} torch threads, {args.repeats} alternating repeats after a warm-up "
            "(methods and precisions alternate inside each repeat), timed by "
            + ("the process's CPU time (time.process_time: time spent waiting for a core of the "
               "shared machine does not count, contention for caches and memory does)"
               if args.clock == "cpu" else "wall-clock time")
            + ": tokens/s from the median time, ratios as the median of per-repeat ratios "
            "(range in brackets). loglik = one "
            "forward over all rows (tokens/s counts every input token); generate = greedy with "
            "the host's preallocated KV cache, 32 new tokens per row (tokens/s counts new "
            "tokens). (c) runs each adapter's rows alone after `set_adapter`. (d)/(c) is the bare "
            "host against (c) in the same repeats: what (a)/(c) would be if the population ran at "
            "the bare host's speed, so trimming the population's overhead cannot take (a)/(c) "
            "past it. Measured on 2 cores "
            "shared with other work (load average well above 2, this process at nice 15): "
            "absolute tokens/s are low and noisy, the ratios are what holds.")
    write_result("population_throughput", figures, table + note)


if __name__ == "__main__":
    main()
