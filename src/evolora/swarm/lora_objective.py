"""The `lora-sft[:GRID[:METRIC]]` objective: LoRA fine-tuning (PEFT) of the built-in host on a
task grid (default `easy`), tuning learning rate, its warm-up and schedule, rank, alpha, dropout,
batch size, steps, target modules and optimizer. Training minimises the answer tokens' negative
log-likelihood on the train split; the score is measured on a fixed holdout sample: METRIC
`loss` (default) returns minus the mean per-token answer NLL, `accuracy` the share of exactly
right greedy answers. Maximised.

With multi-fidelity the budget is the fraction of the configured steps that is trained; every
budget is scored on the same holdout sample, so a low-budget score ranks configurations on the
examples a full-budget one does (not on a smaller, noisier share of them). A
partial-budget `accuracy` score adds the holdout loss as a tie-break worth less than half a right
answer (accuracy + exp(-NLL) / (2 x examples)): on a short training most working configurations
answer the same, and successive halving would promote among them at random. A promotion
warm-starts: the adapter, optimizer and batch-sampler state a lower-budget call of the same
configuration left in this process (the last `RESUME_SLOTS` of them) is trained on for the
remaining steps only, which gives the same adapter as training from scratch. The learning rate
rises linearly over the first `warmup` share of the configured steps (a configuration without
`warmup` starts at full rate), then stays there (`schedule` constant, the default) or decays to
zero at the configured steps along a cosine (a lower budget trains a prefix of that schedule).
The adapter's initial weights, the dropout masks and the batches come from a fixed training seed
(0 unless given; the caller's torch random state is restored), so a configuration's score is
deterministic unless threads of the process train at the same time (they share torch's random
state).
"""

from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np

from evolora.errors import EvoloraError

LORA_SPACE: dict[str, Any] = {
    "lr": {"kind": "float", "low": 1e-4, "high": 3e-1, "log": True},
    "rank": {"kind": "int", "low": 1, "high": 32, "log": True},
    "alpha": {"kind": "float", "low": 1.0, "high": 64.0, "log": True},
    "dropout": {"kind": "float", "low": 0.0, "high": 0.3},
    "batch_size": {"kind": "int", "low": 2, "high": 16, "log": True},
    "steps": {"kind": "int", "low": 10, "high": 120},
    "warmup": {"kind": "float", "low": 0.0, "high": 0.5},
    "schedule": {"kind": "categorical", "choices": ["constant", "cosine"]},
    "targets": {"kind": "categorical", "choices": ["attn", "mlp", "all"]},
    "optimizer": {"kind": "categorical", "choices": ["adamw", "sgd"]},
}
TARGETS = {
    "attn": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mlp": ["gate_proj", "up_proj", "down_proj"],
    "all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
HOLDOUT = 256
METRICS = ("loss", "accuracy")
RESUME_SLOTS = 32
_resume_lock = threading.Lock()
_resume: OrderedDict[str, dict[str, Any]] = OrderedDict()  # config -> training state


def parse_spec(spec: str) -> tuple[str, str]:
    """(grid, metric) of a `lora-sft[:GRID[:METRIC]]` spec."""
    parts = spec.split(":")
    grid = parts[1] if len(parts) > 1 and parts[1] else "easy"
    metric = parts[2] if len(parts) > 2 else "loss"
    if metric not in METRICS or len(parts) > 3:
        raise EvoloraError(
            f"Objective '{spec}' is not valid; write lora-sft[:GRID[:METRIC]] with METRIC in "
            f"{', '.join(METRICS)}."
        )
    from evolora.tasks import TaskGrid

    TaskGrid.named(grid)  # an unknown grid stops here with its own sentence
    return grid, metric


@lru_cache(maxsize=1)
def _host():
    from evolora.hosts import load_host

    return load_host("builtin")


@lru_cache(maxsize=4)
def _examples(grid: str, split: str, n: int, seed: int) -> list:
    from evolora.tasks import TaskGrid

    return TaskGrid.named(grid).sample_batch(np.random.default_rng(seed), n, split=split)


def _answer_nll(model, tokenizer, examples, device) -> Any:
    """Mean per-token negative log-likelihood of each example's answer, differentiable."""
    import torch

    from evolora.hosts.generation import encode, target_logprobs

    heads = encode(tokenizer, [e.prompt for e in examples], special=True)
    tails = encode(tokenizer, [e.answer + "\n" for e in examples], special=False)
    lengths = torch.tensor([len(t) for t in tails], dtype=torch.float32, device=device)
    return -target_logprobs(model, heads, tails, tokenizer.pad_token_id, None) / lengths


def _resumable(key: str, steps: int) -> dict[str, Any] | None:
    """The saved training state of configuration `key` with at most `steps` steps done."""
    with _resume_lock:
        state = _resume.get(key)
    return state if state is not None and state["steps"] <= steps else None


def _save_state(key: str, state: dict[str, Any]) -> None:
    """Keep a training state for a later promotion (the oldest beyond RESUME_SLOTS go)."""
    with _resume_lock:
        _resume[key] = state
        _resume.move_to_end(key)
        while len(_resume) > RESUME_SLOTS:
            _resume.popitem(last=False)


def forget_training_states() -> None:
    """Drop every saved training state (so a new study starts with nothing to warm-start)."""
    with _resume_lock:
        _resume.clear()


def _torch_rng(device: Any) -> dict[str, Any]:
    """The torch random state that draws dropout masks on `device`."""
    import torch

    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_torch_rng(state: dict[str, Any], device: Any) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def lora_sft_value(
    spec: str,
    params: dict[str, Any],
    budget: float | None = None,
    resume: bool = True,
    tiebreak: bool = True,
    seed: int = 0,
) -> float:
    """Fine-tune a fresh copy of the built-in host with `params` (continuing a lower-budget
    run of the same configuration when `resume` and one is saved); its holdout score
    (`tiebreak`: a partial-budget accuracy breaks ties by the loss; `seed`: the training seed)."""
    import torch

    base = _host()
    model = copy.deepcopy(base.model)
    device = model.device
    # A fixed seed for the adapter's initialisation and the dropout masks, restored afterwards.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        adapted = _train(spec, params, budget, resume, base, model, device, seed)
    adapted.eval()
    return _score(spec, adapted.get_base_model(), budget, tiebreak)


def lora_sft_baseline(spec: str) -> float:
    """The untuned built-in host's full-budget score (what a configuration must beat to have
    learnt anything)."""
    return _score(spec, _host().model, None)


def _score(spec: str, model: Any, budget: float | None, tiebreak: bool = True) -> float:
    """`model`'s holdout score at `budget` (see the module docstring)."""
    import torch

    from evolora.hosts.evaluate import evaluate
    from evolora.hosts.host import Host

    grid, metric = parse_spec(spec)
    base = _host()
    holdout = _examples(grid, "holdout", HOLDOUT, 7)
    with torch.no_grad():
        nll = float(_answer_nll(model, base.tokenizer, holdout, model.device).mean())
        if metric == "loss":
            return -nll
        accuracy = float(evaluate(Host(model, base.tokenizer, "builtin+lora"), holdout)["accuracy"])
    if budget is None or budget >= 1.0 or not tiebreak:
        return accuracy
    # A partial-budget accuracy only ranks configurations within their rung, and on a short
    # training most working ones tie: the loss breaks the tie, worth under half a right answer.
    return accuracy + math.exp(-nll) / (2 * len(holdout))


def _rate(params: dict[str, Any], step: int, warmup: int) -> float:
    """The learning rate's factor at `step` (0-based) of a run with `warmup` warm-up steps."""
    if step < warmup:
        return (step + 1) / warmup
    if params.get("schedule", "constant") == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, int(params["steps"]) - warmup)))


def _train(
    spec: str,
    params: dict[str, Any],
    budget: float | None,
    resume: bool,
    base: Any,
    model: Any,
    device: Any,
    seed: int = 0,
) -> Any:
    """`model` with a LoRA adapter trained for `params["steps"]` x `budget` steps (resumed from a
    saved lower-budget state when there is one); saves its state when the budget is partial."""
    import torch
    from peft import LoraConfig, get_peft_model

    grid, _ = parse_spec(spec)
    adapted = get_peft_model(
        model,
        LoraConfig(
            r=int(params["rank"]),
            lora_alpha=float(params["alpha"]),
            lora_dropout=float(params["dropout"]),
            target_modules=TARGETS[params["targets"]],
        ),
    )
    trainable = {n: p for n, p in adapted.named_parameters() if p.requires_grad}
    optimizer = (
        torch.optim.AdamW(trainable.values(), lr=params["lr"])
        if params["optimizer"] == "adamw"
        else torch.optim.SGD(trainable.values(), lr=params["lr"], momentum=0.9)
    )
    steps = max(1, round(int(params["steps"]) * (1.0 if budget is None else float(budget))))
    # Warm-up is a share of the configured steps, so a lower budget trains a prefix of the run.
    warmup = round(float(params.get("warmup", 0.0)) * int(params["steps"]))
    batch = int(params["batch_size"])
    train = _examples(grid, "train", 4096, 0)
    rng = np.random.default_rng(1 + seed)  # the same batches for every configuration
    key = f"{spec}|{seed}|{sorted(params.items())!r}"
    saved = _resumable(key, steps) if resume else None
    if saved is not None:
        with torch.no_grad():
            for name, value in saved["adapter"].items():
                trainable[name].copy_(value)
        optimizer.load_state_dict(copy.deepcopy(saved["optimizer"]))
        rng.bit_generator.state = saved["rng"]
        _set_torch_rng(saved["torch_rng"], device)
    adapted.train()
    with torch.enable_grad():
        for step in range(0 if saved is None else saved["steps"], steps):
            for group in optimizer.param_groups:
                group["lr"] = params["lr"] * _rate(params, step, warmup)
            rows = [train[i] for i in rng.integers(len(train), size=batch)]
            loss = _answer_nll(adapted, base.tokenizer, rows, device).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError("training loss became non-finite")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if resume and budget is not None and budget < 1.0 - 1e-6:  # a full run is never resumed
        _save_state(
            key,
            {
                "steps": steps,
                "adapter": {n: p.detach().clone() for n, p in trainable.items()},
                "optimizer": copy.deepcopy(optimizer.state_dict()),
                "rng": rng.bit_generator.state,
                "torch_rng": _torch_rng(device),
            },
        )
    return adapted
