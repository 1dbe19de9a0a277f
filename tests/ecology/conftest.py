"""A tiny random-init host whose tokenizer knows the task formats, and its saved model folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ecology_helpers import FAMILIES
from transformers import LlamaConfig, LlamaForCausalLM

from evolora.hosts.host import Host
from evolora.hosts.tokenizer import train_tokenizer
from evolora.tasks import TaskGrid


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
