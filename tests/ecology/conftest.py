"""A tiny random-init host whose tokenizer knows the task formats, and small ecology configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from evolora.ecology.config import EcologyConfig
from evolora.ecology.learning import target_lengths
from evolora.hosts.host import Host
from evolora.hosts.tokenizer import train_tokenizer
from evolora.tasks import TaskGrid

FAMILIES = ["math", "logic"]


@pytest.fixture(scope="session")
def tiny_host() -> Host:
    """A 2-layer Llama (hidden 32) over a tokenizer trained on math and logic task lines."""
    grid = TaskGrid(FAMILIES, [1, 2])
    rng = np.random.default_rng(0)
    lines = [f"{ex.prompt}{ex.answer}\n" for ex in grid.sample_batch(rng, 400, split="train")]
    tokenizer = train_tokenizer(lines, vocab_size=300)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        # Larger than the default 0.02 so the adapters' effect on the logits is not negligible.
        initializer_range=0.3,
    )
    return Host(LlamaForCausalLM(config), tokenizer, name="tiny")


@pytest.fixture(scope="session")
def host_dir(tiny_host, tmp_path_factory):
    """The tiny host saved as a model folder, so `load_host` (and PEFT) can load it."""
    folder = tmp_path_factory.mktemp("host")
    tiny_host.model.save_pretrained(folder)
    tiny_host.tokenizer.save_pretrained(folder)
    return folder


def mean_loglik(host, population, slot, examples) -> float:
    """Mean per-token answer log-likelihood of `examples` under adapter `slot` (`Host.loglik`)."""
    targets = [ex.answer + "\n" for ex in examples]
    total = host.loglik(
        [ex.prompt for ex in examples],
        targets,
        adapters=population,
        adapter_ids=[slot] * len(examples),
    ).numpy()
    return float(np.mean(total / np.array(target_lengths(host, targets))))


def small_config(**overrides) -> EcologyConfig:
    """A few-second ecology on the tiny host: math and logic, difficulties 1-2."""
    data = {
        "seed": 3,
        "generations": 4,
        "population": {"initial": 3, "min": 2, "max": 5},
        "lora": {"rank": 2, "alpha": 4.0},
        "grid": {
            "families": FAMILIES,
            "difficulties": [1, 2],
            "cells_per_generation": 2,
            "episodes_per_organelle": 2,
            "max_new_tokens": 6,
        },
        "learning": {"es": {"pairs": 2, "batch": 2}},
        "assimilation_tuning": {
            "window": 2,
            "min_wins": 1,
            "holdout_probe_size": 4,
            "permutations": 100,
        },
        "evaluation": {"every": 2, "per_cell": 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return EcologyConfig.model_validate(data)
