"""Which attention kernel trains a host fastest: transformers' `sdpa` or `eager`, by measurement.

On a CPU, SDPA runs a flash-attention kernel whose backward is slow for a small model's short
heads: on the built-in host's shape it took over a third of a bf16 training step, and the plain
`eager` product (two matmuls and a softmax) trained the same step 1.3x faster. On a GPU, or for
another shape, SDPA may win, so `auto` times both on the run's own batch (`probe_attention`) and
keeps the faster one. Both compute the same attention (tested): only speed and rounding differ.
Inference keeps whatever the host was loaded with; this only concerns training a host's weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from evolora.errors import EvoloraError

AttentionName = Literal["auto", "sdpa", "eager"]
ATTENTIONS: tuple[str, ...] = ("auto", "sdpa", "eager")
# eager must beat sdpa by this factor on the probe to be chosen (sdpa is transformers' default).
MIN_GAIN = 1.05
PROBE_ROWS = 4  # rows of the run's batch timed by the probe (attention and matmuls both scale
# linearly with rows, so a few rows rank the kernels like the whole batch does)


@dataclass(frozen=True)
class Attention:
    """The attention kernel a training run uses, and why."""

    name: Literal["sdpa", "eager"]
    requested: str
    reason: str

    def record(self) -> dict[str, str]:
        """A flat dict for run folders: the kernel used, the one requested and why."""
        return {"attention": self.name, "attention_requested": self.requested,
                "attention_reason": self.reason}


def set_attention(model, name: str) -> None:
    """Make `model` (a transformers model) compute attention with `name` ("sdpa" or "eager")."""
    if name not in ("sdpa", "eager"):
        raise EvoloraError(f"attention must be sdpa or eager here, got {name!r}.")
    if model.config._attn_implementation != name:
        model.set_attn_implementation(name)


def resolve_attention(requested: str, model, rows, train_step) -> Attention:
    """The kernel to train `model` with: `requested` if it names one, else the probe's choice.

    `rows` is a batch of input ids; `train_step(rows)` runs one forward and backward (no update)
    in the run's precision. The model is left set to the chosen kernel, its gradients cleared.
    """
    if requested not in ATTENTIONS:
        raise EvoloraError(f"attention must be one of {', '.join(ATTENTIONS)}, got {requested!r}.")
    if requested != "auto":
        set_attention(model, requested)
        return Attention(requested, requested, f"{requested} was requested.")
    seconds = probe_attention(model, rows[:PROBE_ROWS], train_step)
    gain = seconds["sdpa"] / seconds["eager"]
    name = "eager" if gain >= MIN_GAIN else "sdpa"
    set_attention(model, name)
    return Attention(name, requested,
                     f"probe: a training forward and backward with eager attention ran at "
                     f"{gain:.2f}x sdpa's speed (eager needs >= {MIN_GAIN}x), "
                     f"so training uses {name}.")


def probe_attention(model, rows, train_step, repeats: int = 3) -> dict[str, float]:
    """Best seconds of `train_step(rows)` with each kernel, alternating after a warm-up of each:
    the process's CPU time on a CPU (waiting for a core of a shared machine does not count),
    synchronised wall time on an accelerator."""
    device = rows.device
    best = {"sdpa": float("inf"), "eager": float("inf")}
    for attempt in range(repeats + 1):
        for name in best:
            set_attention(model, name)
            start = _now(device)
            train_step(rows)
            if attempt:  # the first round is the warm-up
                best[name] = min(best[name], _now(device) - start)
            model.zero_grad(set_to_none=True)
    return best


def _now(device) -> float:
    if device.type == "cpu":
        return time.process_time()
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)
    return time.perf_counter()
