"""The log-likelihood workload the ecology really runs: one ES / compose fitness call.

`evolora.ecology.learning.es._fitness` (used by the `es` and `compose` rules) scores each learning
organelle's batch of task examples under its 2 x `pairs` = 16 perturbed adapters in one
`Host.loglik` call (the examples are halved by `keep_if_better`). Here that call is timed with
real task prompts through the `Host` API (tokenisation, length-sorted micro-batches of 64, the
population's routing), against the same rows scored adapter by adapter through PEFT
(`set_adapter`, then `Host.loglik` on that adapter's rows) and against the bare host. The
population holds as many slots as the default ecology preset would with `rules: [es]`.

Used by population_throughput.py (`--fitness`, on by default).
"""

from __future__ import annotations

import copy
import statistics

import numpy as np
import torch

from evolora.hosts.host import Host
from evolora.hosts.precision import Precision, run_in
from evolora.lora import LoRAPopulation
from evolora.tasks import TaskGrid

FAMILIES = ("math", "logic", "sorting", "sequence", "json_repair")  # the default preset's grid
SLOTS_PER_JOB = 16  # 2 x pairs, pairs = 8 (ESConfig and ComposeConfig defaults)
# The default preset with `rules: [es]`: merged slot + 6 organelles x (1 + 16 scratch) + a trial.
POPULATION = 1 + 6 * (1 + SLOTS_PER_JOB) + 1
RANK, ALPHA = 4, 8.0  # the default preset's `lora`
# (organelles learning in the step, examples per adapter): a single organelle at each batch size
# (16 = the default batch of 32 halved by keep_if_better; 4 = the original setup), and the
# default preset's five organelles learning together.
SHAPES = ((1, 4), (1, 8), (1, 16), (1, 32), (5, 16))


def fitness_rows(jobs: int, per_adapter: int, seed: int = 0):
    """(prompts, targets, adapter ids) of one fitness call: job j's examples (one family each)
    under its 16 scratch slots, listed slot by slot as `_fitness` lists them."""
    rng = np.random.default_rng(seed)
    prompts, targets, ids = [], [], []
    for j in range(jobs):
        grid = TaskGrid([FAMILIES[j % len(FAMILIES)]], [1, 2, 3])
        examples = grid.sample_batch(rng, per_adapter, split="train")
        first = 1 + 6 + j * SLOTS_PER_JOB  # after the merged slot and the organelles
        for slot in range(first, first + SLOTS_PER_JOB):
            prompts += [ex.prompt for ex in examples]
            targets += [ex.answer + "\n" for ex in examples]
            ids += [slot] * per_adapter
    return prompts, targets, ids


def bare_host(host: Host, population: LoRAPopulation) -> Host:
    """A Host over a copy of `host`'s model without the population's layers."""
    bare = copy.deepcopy(host.model)
    for name, module in list(bare.named_modules()):
        if hasattr(module, "base") and name in population.A:  # put the plain Linear back
            parent, _, child = name.rpartition(".")
            setattr(bare.get_submodule(parent), child, module.base)
    return Host(bare, copy.deepcopy(host.tokenizer), "bare")


def peft_host(host: Host, population: LoRAPopulation, slots: list[int]) -> Host:
    """A Host over a PEFT copy of the bare model holding `slots` as adapters "s<slot>"."""
    from peft import LoraConfig, get_peft_model

    bare = bare_host(host, population).model
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=list(population.targets))
    model = get_peft_model(bare, config, adapter_name=f"s{slots[0]}")
    for slot in slots[1:]:
        model.add_adapter(f"s{slot}", config)
    for name, module in model.base_model.model.named_modules():
        if name in population.A:
            for slot in slots:
                module.lora_A[f"s{slot}"].weight.data.copy_(population.A[name][slot])
                module.lora_B[f"s{slot}"].weight.data.copy_(population.B[name][slot])
    return Host(model.eval().requires_grad_(False), copy.deepcopy(host.tokenizer), "peft")


def measure_fitness(host: Host, timed, repeats: int, rows: list, precisions: list[str]) -> dict:
    """Time the fitness call per shape and precision: (a) population, (c) PEFT switching,
    (d) bare; append one table row each and return the figures."""
    population = LoRAPopulation(host, n=POPULATION, rank=RANK, alpha=ALPHA, seed=0)
    population.mutate(range(POPULATION), sigma=0.02, generator=1)
    bare = bare_host(host, population)
    figures = {}
    for jobs, per_adapter in SHAPES:
        prompts, targets, ids = fitness_rows(jobs, per_adapter)
        slots = sorted(set(ids))
        peft = peft_host(host, population, slots)
        rows_of = {s: [i for i, x in enumerate(ids) if x == s] for s in slots}
        tokens = sum(len(t) for t in host.tokenizer(
            [p + t for p, t in zip(prompts, targets, strict=True)])["input_ids"])

        def switching(precision, _peft=peft, _rows_of=rows_of, _p=prompts, _t=targets):
            # One precision block around all its calls (bf16 weight copies made once, as the
            # population's single call makes them once); each call then runs inside it.
            _peft.precision = _FP32
            out = []
            with run_in(_peft.model, precision):
                for slot, rows in _rows_of.items():
                    _peft.model.set_adapter(f"s{slot}")
                    out.append(_peft.loglik([_p[i] for i in rows], [_t[i] for i in rows]))
            return out

        fns = {}
        for precision in precisions:
            mine = {
                "(a) population": _in(precision, host, lambda _p=prompts, _t=targets, _i=ids:
                                      host.loglik(_p, _t, adapters=population, adapter_ids=_i)),
                "(c) PEFT switching": lambda _precision=precision: switching(_precision),
                "(d) bare": _in(precision, bare, lambda _p=prompts, _t=targets:
                                bare.loglik(_p, _t)),
            }
            fns.update({(precision, name): fn for name, fn in mine.items()})
        agreement = _agreement(host, peft, population, prompts, targets, ids, rows_of)
        seconds = timed(fns, repeats)
        for precision in precisions:
            times = {name: s for (p, name), s in seconds.items() if p == precision}
            tps = {name: tokens / statistics.median(s) for name, s in times.items()}
            mine = times["(a) population"]
            ratios = {
                "(a)/(c)": statistics.median(
                    c / a for c, a in zip(times["(c) PEFT switching"], mine, strict=True)),
                "(a)/(d)": statistics.median(
                    d / a for d, a in zip(times["(d) bare"], mine, strict=True)),
                "(d)/(c)": statistics.median(c / d for c, d in zip(
                    times["(c) PEFT switching"], times["(d) bare"], strict=True)),
            }
            adapters = jobs * SLOTS_PER_JOB
            key = f"fitness | {adapters} adapters x {per_adapter} | {precision}"
            figures[key] = {"jobs": jobs, "adapters": adapters, "rows_per_adapter": per_adapter,
                            "rows": len(ids), "tokens": tokens, "precision": precision,
                            "tokens_per_s": tps, "seconds": times, "ratios": ratios,
                            "max_abs_diff_a_c": agreement}
            rows.append(f"| {jobs} | {adapters} | {per_adapter} | {len(ids)} | {precision} | "
                        + " | ".join(f"{tps[m]:,.0f}" for m in tps) + " | "
                        + " | ".join(f"{ratios[k]:.2f}x" for k in ratios) + " |")
            print(rows[-1], flush=True)
    population.detach()
    return figures


_FP32 = Precision("fp32", "fp32", "set by the benchmark")


def _in(precision: str, host: Host, fn):
    """`fn` run with `host` in `precision` (the Host's own policy: bf16 products in the frozen
    linear layers, fp32 between them)."""
    chosen = Precision(precision, precision, "set by the benchmark")

    def run():
        host.precision = chosen
        return fn()
    return run


@torch.no_grad()
def _agreement(host, peft, population, prompts, targets, ids, rows_of) -> float:
    """Max |log-likelihood| difference between the population and PEFT in fp32."""
    for h in (host, peft):
        h.precision = _FP32
    ours = host.loglik(prompts, targets, adapters=population, adapter_ids=ids)
    worst = 0.0
    for slot, rows in rows_of.items():
        peft.model.set_adapter(f"s{slot}")
        theirs = peft.loglik([prompts[i] for i in rows], [targets[i] for i in rows])
        worst = max(worst, float((ours[rows] - theirs).abs().max()))
    return worst
