"""The precision policy: fp32, or bf16 autocast where it pays on the device at hand.

`resolve_precision("auto", device)` picks bf16 only where it is both fast and sound: on cuda when
the device supports bf16 (compute capability 8.0 and newer); on cpu when a short start-up probe
(a few alternating fp32 / bf16 matmuls, a few tens of milliseconds) measures bf16 at least
`MIN_SPEEDUP` times faster and its product within `MAX_ERROR` of fp32's. Anywhere else, fp32.
The probe runs once per device and process.

A frozen model's forwards under bf16 (`run_in`, `bf16_linears`): its linear layers hold bf16
copies of their weights for the duration of a block (cast once: autocast would re-cast every weight
at every call, it caches casts only of weights that require grad) and compute in bf16; everything
between them, the output head included, stays fp32. Weights, optimizer state, ES noise, merges and
adapter factors stay fp32. Training a model's own weights uses plain bf16 autocast (`autocast`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from evolora.errors import EvoloraError

PrecisionName = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
MIN_SPEEDUP = 1.3  # bf16 must beat fp32 by this factor on the probe to be chosen by "auto"
MAX_ERROR = 0.02  # largest relative error of the probe's bf16 product against fp32's
# Greedy bf16 steps whose top-2 logit margin is below this are re-decided in fp32 (verified.py);
# on the built-in host the margin error of bf16 is below it on ~99 % of steps.
VERIFY_MARGIN = 0.1
# Verified bf16 generation takes this many times plain bf16's time (the fp32 checks and the rows
# decoded on after a correction; benchmarks/precision_accuracy.py measured 1.67 on the built-in
# host), so "auto" generates in bf16 only when a decode step gains MIN_SPEEDUP beyond it.
VERIFY_COST = 1.7
_PROBE_SHAPE = (512, 512, 512)  # (rows, in, out) of the probe matmul: ~0.27 GFLOP


@dataclass(frozen=True)
class Probe:
    """What the start-up probe measured on one device."""

    device: str
    speedup: float  # fp32 seconds / bf16 seconds of the probe matmul (0: bf16 not usable)
    error: float  # relative max error of the bf16 product against fp32 (inf: not measured)
    note: str  # one sentence on what was measured


@dataclass(frozen=True)
class Precision:
    """The precision a host runs in, and why it was chosen.

    `name` applies to batched forwards (log-likelihood, training, the population's forward);
    `generation` to token-by-token decoding, where tiny per-step matmuls can make bf16 slower
    (see `probe_decode`). Both equal the request unless it is "auto".
    """

    name: Literal["fp32", "bf16"]
    requested: str
    reason: str
    generation: Literal["fp32", "bf16"] | None = None  # None: same as `name`

    @property
    def bf16(self) -> bool:
        """True when batched forwards run under bf16 autocast."""
        return self.name == "bf16"

    @property
    def generation_bf16(self) -> bool:
        """True when generation runs under bf16 autocast."""
        return (self.generation or self.name) == "bf16"

    @property
    def label(self) -> str:
        """E.g. "bf16", or "bf16 (generation fp32)" when the two differ."""
        if self.generation in (None, self.name):
            return self.name
        return f"{self.name} (generation {self.generation})"

    def record(self) -> dict[str, str]:
        """A flat dict for run folders: the precisions used, the one requested and why."""
        return {"precision": self.name, "precision_generation": self.generation or self.name,
                "precision_requested": self.requested, "precision_reason": self.reason}

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Precision:
        """The precision a run recorded with `record()`, so a resumed run keeps it (no probe)."""
        names = (record.get("precision"), record.get("precision_generation"))
        if any(name not in ("fp32", "bf16") for name in names):
            raise EvoloraError(
                f"A recorded precision must name fp32 or bf16 for 'precision' and "
                f"'precision_generation'; got {names}."
            )
        return cls(names[0], record.get("precision_requested", names[0]),
                   record.get("precision_reason", "recorded by the run"), names[1])


_probes: dict[str, Probe] = {}


def check_precision(requested) -> str | Precision:
    """`requested` if it is a known precision name or a `Precision`; else one clear EvoloraError."""
    if not isinstance(requested, Precision) and requested not in PRECISIONS:
        raise EvoloraError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}."
        )
    return requested


def resolve_precision(requested: str, device) -> Precision:
    """The precision to run in on `device` for a requested "auto", "fp32" or "bf16"."""
    import torch

    check_precision(requested)
    device = torch.device(device)
    if requested == "fp32":
        return Precision("fp32", requested, "fp32 was requested.")
    if device.type not in ("cpu", "cuda"):
        if requested == "bf16":
            raise EvoloraError(f"precision bf16 is supported on cpu and cuda, not {device.type}.")
        return Precision("fp32", requested, f"bf16 autocast is not used on {device.type}.")
    probe = probe_bf16(device)
    usable = probe.speedup >= MIN_SPEEDUP and probe.error <= MAX_ERROR
    if requested == "bf16":
        if probe.error > MAX_ERROR:  # wrong results are never acceptable, slow ones are the user's
            raise EvoloraError(f"precision bf16 cannot run correctly on {device}: {probe.note}")
        return Precision("bf16", requested, f"bf16 was requested; {probe.note}")
    return Precision("bf16" if usable else "fp32", requested, probe.note)


def probe_bf16(device) -> Probe:
    """The probe's result for `device` (measured on first use, then remembered)."""
    import torch

    device = torch.device(device)
    key = str(device)
    if key not in _probes:
        _probes[key] = _probe_cuda(device) if device.type == "cuda" else _probe_cpu(device)
    return _probes[key]


def _probe_cuda(device) -> Probe:
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    if major >= 8 and torch.cuda.is_bf16_supported():
        return Probe(str(device), float("inf"), 0.0,
                     f"cuda capability {major}.{minor} has native bf16.")
    return Probe(str(device), 0.0, 0.0,
                 f"cuda capability {major}.{minor} has no native bf16 (needs 8.0 or newer).")


def _probe_cpu(device) -> Probe:
    """Alternating fp32 / bf16 matmuls of one shape; the best time of each decides."""
    import torch

    rows, d_in, d_out = _PROBE_SHAPE
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, d_in, generator=gen).to(device)
    w = torch.randn(d_out, d_in, generator=gen).to(device) / d_in**0.5
    exact = x @ w.t()
    x16, w16 = x.bfloat16(), w.bfloat16()
    fast = x16 @ w16.t()  # warm-up (kernel creation), and the product whose error is checked
    x16 @ w16.t()
    error = float((fast.float() - exact).abs().max() / exact.abs().max())
    fp32_best = bf16_best = float("inf")
    for attempt in range(7):
        start = time.perf_counter()
        x @ w.t()
        middle = time.perf_counter()
        x16 @ w16.t()
        end = time.perf_counter()
        fp32_best, bf16_best = min(fp32_best, middle - start), min(bf16_best, end - middle)
        if attempt >= 2 and bf16_best > 4 * fp32_best:  # emulated bf16: stop timing it
            break
    speedup = fp32_best / bf16_best
    verdict = "chosen" if speedup >= MIN_SPEEDUP and error <= MAX_ERROR else "not chosen"
    return Probe(str(device), speedup, error,
                 f"probe: bf16 matmul {speedup:.2f}x fp32's speed, relative error {error:.1e} "
                 f"(bf16 {verdict}: needs >= {MIN_SPEEDUP}x and <= {MAX_ERROR}).")


def with_generation_probe(precision: Precision, model) -> Precision:
    """`precision` with its generation part decided: for "auto" with bf16 forwards, bf16
    generation only if `probe_decode` measures the model's own decode step enough faster in bf16
    to pay for verifying its greedy steps (`VERIFY_COST`)."""
    if precision.requested != "auto" or not precision.bf16:
        return precision
    device = next(model.parameters()).device
    if device.type == "cuda":
        return precision
    speedup = probe_decode(model)
    needed = MIN_SPEEDUP * VERIFY_COST
    generation = "bf16" if speedup >= needed else "fp32"
    reason = (f"{precision.reason} Decode probe: a bf16 decode step of this host runs at "
              f"{speedup:.2f}x fp32's speed (verified bf16 generation needs >= {needed:.2f}x), "
              f"so generation runs in {generation}.")
    return Precision(precision.name, precision.requested, reason, generation)


def probe_decode(model, batch: int = 16, prompt: int = 24, steps: int = 5) -> float:
    """fp32 seconds / bf16 seconds of one cached decode step of `model` (best of `steps`,
    alternating), on random tokens."""
    import torch

    from evolora.hosts.generation import cache_keyword, preallocated_cache

    device = next(model.parameters()).device
    vocab = model.get_input_embeddings().num_embeddings
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, prompt + 1), generator=gen).to(device)
    caches = {}
    keyword = cache_keyword(model)  # transformers' current name for the cache argument
    with torch.no_grad():
        for name in ("fp32", "bf16"):
            with run_in(model, name):
                caches[name] = preallocated_cache(prompt + steps + 1)
                model(input_ids=ids[:, :prompt], use_cache=True, logits_to_keep=1,
                      **{keyword: caches[name]})
        best = {"fp32": float("inf"), "bf16": float("inf")}
        for _ in range(steps):
            for name in ("fp32", "bf16"):
                with run_in(model, name):
                    start = time.perf_counter()
                    model(input_ids=ids[:, prompt:], use_cache=True, logits_to_keep=1,
                          **{keyword: caches[name]})
                    best[name] = min(best[name], time.perf_counter() - start)
    return best["fp32"] / best["bf16"]


class Exact:
    """The handle `run_in` yields: `exact()` runs the forwards inside it in fp32 even within a
    bf16 block (a no-op handle for fp32)."""

    def __init__(self, block: _Bf16Block | None = None) -> None:
        self._block = block

    @contextmanager
    def exact(self) -> Iterator[None]:
        """Within this block, the model's forwards compute in fp32 (its own fp32 weights)."""
        if self._block is None:
            yield
            return
        self._block.restore()
        try:
            yield
        finally:
            self._block.apply()


@contextmanager
def run_in(model, precision: Precision | str) -> Iterator[Exact]:
    """Inside the block, forwards of the frozen `model` run in `precision`: for bf16, its frozen
    linear layers compute in bf16 and everything between them stays fp32 (`bf16_linears`); for
    fp32, unchanged. Yields an `Exact` handle whose `exact()` runs a forward in fp32 inside."""
    name = precision.name if isinstance(precision, Precision) else precision
    if name != "bf16":
        yield Exact()
        return
    with bf16_linears(model) as block:
        yield Exact(block)


def autocast(device, precision: Precision | str):
    """A context running matmuls in bf16 when `precision` is bf16 (a no-op context for fp32); for
    training a model's own weights (its frozen forwards use `run_in`)."""
    import torch

    name = precision.name if isinstance(precision, Precision) else precision
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=name == "bf16")


@contextmanager
def bf16_linears(model) -> Iterator[_Bf16Block]:
    """Inside the block, every frozen Linear except the output head holds bf16 copies of its
    weight and bias (cast once), reads its input in bf16 and returns fp32; the fp32 parameters
    are put back, unchanged, when the block ends.

    Only the products are rounded: the residual stream, norms, rotary embedding, attention
    scores and softmax, activations and the output head stay fp32 (autocast would run attention
    and every elementwise op between the projections in bf16, and re-dispatch every op).
    """
    block = _Bf16Block(model)
    block.apply()
    try:
        yield block
    finally:
        block.restore()


# Linear -> (bf16 weight, bf16 bias) while a bf16 block's casting hooks are on it.
_BF16_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bf16_copies(module) -> tuple | None:
    """The bf16 (weight, bias) that a running `bf16_linears` block put into the Linear `module`
    (its hooks cast its input to bf16 and its output back to fp32), or None outside such a
    block. A wrapper calling the Linear on every decode step can do that cast inline, without
    the cost of the hooks."""
    return _BF16_COPIES.get(module)


class _Bf16Block:
    """The frozen Linears of one model with their fp32 parameters and bf16 copies; `apply` puts
    the copies (and the casting hooks) in, `restore` the fp32 originals."""

    def __init__(self, model) -> None:
        import torch
        from torch import nn

        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        # (module, fp32 weight, fp32 bias, bf16 weight, bf16 bias)
        self.linears: list[tuple] = []
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if (isinstance(module, nn.Linear) and module is not head and weight is not None
                    and not weight.requires_grad and weight.dtype == torch.float32):
                bias = module.bias
                self.linears.append((
                    module, weight, bias,
                    nn.Parameter(weight.detach().bfloat16(), requires_grad=False),
                    None if bias is None else nn.Parameter(bias.detach().bfloat16(),
                                                           requires_grad=False)))
        self.handles: list = []

    def apply(self) -> None:
        """bf16 copies in, with hooks casting each Linear's input to bf16 and output to fp32."""
        for module, _, _, weight16, bias16 in self.linears:
            module.weight, module.bias = weight16, bias16
            self.handles += [module.register_forward_pre_hook(_to_bf16),
                             module.register_forward_hook(_to_fp32)]
            _BF16_COPIES[module] = (weight16, bias16)

    def restore(self) -> None:
        """The fp32 parameters back, hooks removed."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        for module, weight, bias, _, _ in self.linears:
            module.weight, module.bias = weight, bias
            _BF16_COPIES.pop(module, None)


def _to_bf16(_module, args):
    import torch

    return tuple(a.bfloat16() if torch.is_tensor(a) and a.is_floating_point() else a
                 for a in args)


def _to_fp32(_module, _args, output):
    return output.float()
