"""Tiny random-init Llama models, random adapters and token batches for the lora tests."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from evolora.lora import LoRAPopulation

VOCAB = 61


def tiny_llama(seed: int = 0, hidden: int = 32, layers: int = 2) -> LlamaForCausalLM:
    """A seeded random-init Llama small enough for unit tests, frozen and in eval mode."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        intermediate_size=2 * hidden - 8,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    return model


def randomize(population: LoRAPopulation, seed: int = 1, scale: float = 0.2) -> None:
    """Give every member non-zero B (and new A) so that adapters really change the output."""
    gen = torch.Generator().manual_seed(seed)
    for name in population.layer_names:
        population.A[name] = torch.randn(population.A[name].shape, generator=gen) * scale
        population.B[name] = torch.randn(population.B[name].shape, generator=gen) * scale


def make_tokens(rows: int = 6, length: int = 9, seed: int = 3) -> torch.Tensor:
    """Seeded random token ids (no pad token)."""
    return torch.randint(1, VOCAB, (rows, length), generator=torch.Generator().manual_seed(seed))
