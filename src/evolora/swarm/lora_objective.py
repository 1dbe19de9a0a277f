"""The `lora-sft[:GRID[:METRIC]]` objective: LoRA fine-tuning (PEFT) of the built-in host on a
task grid (default `easy`), tuning learning rate, rank, alpha, dropout, batch size, steps, target
modules and optimizer. Training minimises the answer tokens' negative log-likelihood on the train
split; the score is measured on a fixed holdout sample: METRIC `loss` (default) returns minus
the mean per-token answer NLL, `accuracy` the share of exactly right greedy answers. Maximised.

With multi-fidelity the budget is the fraction of the configured steps that is trained and of
the holdout sample that scores it (a prefix of the same sample, at least `MIN_HOLDOUT`
examples), so a low-budget trial costs about that fraction of a full one and a full-budget
score is unchanged.
"""

from __future__ import annotations

import copy
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
    "steps": {"kind": "int", "low": 5, "high": 40},
    "targets": {"kind": "categorical", "choices": ["attn", "mlp", "all"]},
    "optimizer": {"kind": "categorical", "choices": ["adamw", "sgd"]},
}
TARGETS = {
    "attn": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mlp": ["gate_proj", "up_proj", "down_proj"],
    "all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
HOLDOUT = 64
MIN_HOLDOUT = 16
METRICS = ("loss", "accuracy")


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


def lora_sft_value(spec: str, params: dict[str, Any], budget: float | None = None) -> float:
    """Fine-tune a fresh copy of the built-in host with `params`; its holdout score."""
    import torch
    from peft import LoraConfig, get_peft_model

    from evolora.hosts.evaluate import evaluate
    from evolora.hosts.host import Host

    grid, metric = parse_spec(spec)
    base = _host()
    model = copy.deepcopy(base.model)
    device = model.device
    adapted = get_peft_model(
        model,
        LoraConfig(
            r=int(params["rank"]),
            lora_alpha=float(params["alpha"]),
            lora_dropout=float(params["dropout"]),
            target_modules=TARGETS[params["targets"]],
        ),
    )
    trainable = [p for p in adapted.parameters() if p.requires_grad]
    optimizer = (
        torch.optim.AdamW(trainable, lr=params["lr"])
        if params["optimizer"] == "adamw"
        else torch.optim.SGD(trainable, lr=params["lr"], momentum=0.9)
    )
    steps = max(1, round(int(params["steps"]) * (1.0 if budget is None else float(budget))))
    batch = int(params["batch_size"])
    train = _examples(grid, "train", 4096, 0)
    rng = np.random.default_rng(1)  # the same batches for every configuration
    adapted.train()
    with torch.enable_grad():
        for _ in range(steps):
            rows = [train[i] for i in rng.integers(len(train), size=batch)]
            loss = _answer_nll(adapted, base.tokenizer, rows, device).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError("training loss became non-finite")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    adapted.eval()
    share = 1.0 if budget is None else min(1.0, float(budget))
    holdout = _examples(grid, "holdout", HOLDOUT, 7)[: max(MIN_HOLDOUT, round(HOLDOUT * share))]
    with torch.no_grad():
        if metric == "loss":
            return -float(_answer_nll(adapted, base.tokenizer, holdout, device).mean())
        host = Host(adapted.get_base_model(), base.tokenizer, "builtin+lora")
        return float(evaluate(host, holdout)["accuracy"])
