"""Tiny random-init causal LMs (Llama, Qwen2) and a tiny tokenizer, saved to temp folders."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from evolora.hosts.tokenizer import train_tokenizer

TEXT = [
    "math: 3+4*2=11\n",
    "sort asc: pear apple fig =apple fig pear\n",
    "logic: T and F =false\n",
    'json: {"ab":1,cd:null} ={"ab":1,"cd":null}\n',
    "seq: 2 4 6 8 =10\n",
    "To be, or not to be, that is the question:\n",
    "Whether 'tis nobler in the mind to suffer the slings and arrows\n",
] * 20


@pytest.fixture(scope="session")
def tiny_text() -> list[str]:
    """A few lines of task-like and English text."""
    return list(TEXT)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE tokenizer of a few hundred tokens with <pad>, <bos>, <eos>."""
    return train_tokenizer(TEXT, vocab_size=320)


def _shape(tokenizer) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 64,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        # Larger than the default 0.02 so next-token logits are decisive (no near-ties in argmax).
        "initializer_range": 0.3,
    }


def _save(model, tokenizer, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, tiny_tokenizer):
    """Folder holding a tiny random-init LlamaForCausalLM and its tokenizer."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**_shape(tiny_tokenizer), tie_word_embeddings=True))
    return _save(model, tiny_tokenizer, tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory, tiny_tokenizer):
    """Folder holding a tiny random-init Qwen2ForCausalLM and its tokenizer."""
    torch.manual_seed(1)
    model = Qwen2ForCausalLM(Qwen2Config(**_shape(tiny_tokenizer)))
    return _save(model, tiny_tokenizer, tmp_path_factory.mktemp("qwen2"))


@pytest.fixture(scope="session", params=["llama", "qwen2"])
def tiny_host(request, llama_dir, qwen_dir):
    """A Host over each tiny architecture in turn."""
    from evolora.hosts import load_host

    return load_host(str(llama_dir if request.param == "llama" else qwen_dir))
