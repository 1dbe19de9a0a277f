"""Tiny pools the braid tests build: random Llamas over one small task tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from evolora.braid.pool import ModelPool, profile_of
from evolora.cli import main
from evolora.hosts.host import Host
from evolora.hosts.tokenizer import train_tokenizer
from evolora.tasks import TaskGrid

FAMILIES = ["math", "logic"]
PROBE_IDS = torch.tensor([[5, 9, 14, 3, 22]])


def tiny_tokenizer():
    """A 300-token tokenizer trained on math and logic task lines."""
    grid = TaskGrid(FAMILIES, [1, 2])
    rng = np.random.default_rng(0)
    lines = [f"{ex.prompt}{ex.answer}\n" for ex in grid.sample_batch(rng, 300, split="train")]
    return train_tokenizer(lines, vocab_size=300)


def tiny_host(tokenizer, seed: int, hidden: int = 32, layers: int = 2, name: str = "m") -> Host:
    """A random Llama (hidden `hidden`, `layers` layers) over `tokenizer`."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True, initializer_range=0.3,
    )
    return Host(LlamaForCausalLM(config), tokenizer, name=name)


def tiny_pool(tokenizer, hidden=(32, 32, 48), layers=(2, 2, 3)) -> ModelPool:
    """A pool of random Llamas sharing `tokenizer`, one per (hidden, layers) pair."""
    hosts = [tiny_host(tokenizer, seed, h, n, f"m{seed}")
             for seed, (h, n) in enumerate(zip(hidden, layers, strict=True))]
    return ModelPool(hosts, [profile_of(h, h.name, "hf", h.name) for h in hosts])


def probe_logits(host: Host) -> torch.Tensor:
    """The host's logits on one fixed token sequence (to tell models apart exactly)."""
    with torch.no_grad():
        return host.model(PROBE_IDS.to(host.device)).logits


def made_pool(root: Path, difficulties: list[int]) -> Path:
    """A pool `evolora braid pool make` writes in `root/base`: the built-in host and a math and a
    logic adapter trained 2 steps, skill measured on 6 prompts per family."""
    config = root / "pool.yaml"
    config.write_text(f"families: [math, logic]\ndifficulties: {difficulties}\nsteps: 2\n"
                      "batch_per_family: 2\nskill_examples: 6\nmax_new_tokens: 4\n")
    assert main(["braid", "pool", "make", "-c", str(config), "-o", str(root / "base")]) == 0
    return root / "base"
