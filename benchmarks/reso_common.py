"""Shared pieces of the reso benchmarks: the training setup, one timed run, and evaluation."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from evolora.hosts.corpus import MixtureBatches
from evolora.hosts.evaluate import evaluate, grid_examples
from evolora.hosts.generation import StopChecker, encode, generate_batch
from evolora.hosts.host import Host
from evolora.hosts.train_config import DataSpec, OptimSpec
from evolora.reso.model import ResoForCausalLM
from evolora.reso.train import (
    builtin_tokenizer,
    plain_model,
    reso_config,
    train_for,
    training_texts,
    validation_loss,
    validation_rows,
)
from evolora.reso.train_config import ResoModelSpec, ResoTrainConfig

SEQ_LEN = 128


def setup(preset: str, batch_size: int):
    """(tokenizer, training config, held-out rows, training batches) for a preset; the corpus is
    tokenised once here, and each run re-seeds a copy of the batches."""
    config = ResoTrainConfig(
        model=ResoModelSpec(preset=preset),
        data=DataSpec(seq_len=SEQ_LEN),
        # Constant learning rate after warm-up: under a wall-clock budget the step count is
        # unknown, and a schedule tied to it would favour whichever model runs fewer steps.
        optim=OptimSpec(steps=10_000, batch_size=batch_size, lr=2e-3, warmup_steps=20,
                        min_lr_ratio=1.0),
    )
    tokenizer = builtin_tokenizer()
    texts, held = training_texts(config)
    val = validation_rows(tokenizer, held, 48, SEQ_LEN)
    return tokenizer, config, val, MixtureBatches(config.data, tokenizer, texts, config.seed)


def build(kind: str, preset: str, tokenizer, seed: int, ablate: tuple[str, ...] = ()):
    """A freshly initialised 'reso' (minus `ablate`) or 'plain' model, seeded."""
    torch.manual_seed(seed)
    cfg = reso_config(ResoModelSpec(preset=preset, ablate=list(ablate)), tokenizer)
    return ResoForCausalLM(cfg) if kind == "reso" else plain_model(cfg, tokenizer)


def run(model, config: ResoTrainConfig, batches: MixtureBatches, val, seed: int, seconds: float):
    """Train `model` for `seconds` CPU seconds on the batches of `seed`; return its figures."""
    config = config.model_copy(update={"seed": seed})
    batches = copy.copy(batches)
    batches.seed = seed  # batch `step` depends only on (seed, step)
    figures = train_for(model, config, batches, seconds=seconds)
    figures["val_loss"] = validation_loss(model, val)
    if isinstance(model, ResoForCausalLM) and model.config.enabled("coherence_gating"):
        with torch.no_grad():
            model(val[:16, :-1])
        skipped, total = model.last_skip
        figures["skipped_fraction"] = skipped / max(1, total)
    return figures


def holdout_accuracy(model, tokenizer, seed: int, per_cell: int) -> float:
    """Exact-answer accuracy on the default grid's holdout split (greedy, 24 new tokens)."""
    host = Host(model, tokenizer, name="bench")
    result = evaluate(host, grid_examples("default", per_cell, seed + 100), max_new_tokens=24)
    return float(result["accuracy"])


PROMPTS = ["math: 3+4=", "math: 12-5=", "ROMEO:", "KING:", "seq: 1 2 3 =", "logic: T and F ="]


@torch.no_grad()
def generation_speed(model, tokenizer, new_tokens: int = 48) -> float:
    """Tokens per CPU second of cached greedy generation of 6 prompts, `new_tokens` each."""
    seqs = encode(tokenizer, PROMPTS, special=True)
    started = time.process_time()
    out = generate_batch(model.eval(), seqs, tokenizer.pad_token_id, set(),
                         StopChecker(tokenizer, ()), new_tokens, 0.0, None, None, True, None)
    return sum(len(o) for o in out) / (time.process_time() - started)


def median_ratio(fast: list[float], slow: list[float]) -> float:
    """median(a / b) over paired repeats."""
    return float(np.median(np.asarray(fast) / np.asarray(slow)))
