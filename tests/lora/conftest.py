"""Fixtures for the lora tests: a tiny Llama, its twin, a population with non-zero B, tokens."""

from __future__ import annotations

import copy

import pytest
import torch
from lora_models import make_tokens, randomize, tiny_llama
from transformers import LlamaForCausalLM

from evolora.lora import LoRAPopulation


@pytest.fixture
def model() -> LlamaForCausalLM:
    return tiny_llama()


@pytest.fixture
def twin(model) -> LlamaForCausalLM:
    """An untouched copy of `model` with the same weights (for PEFT and bare references)."""
    return copy.deepcopy(model)


@pytest.fixture
def population(model) -> LoRAPopulation:
    pop = LoRAPopulation(model, n=4, rank=4, alpha=8, seed=0)
    randomize(pop)
    return pop


@pytest.fixture
def tokens() -> torch.Tensor:
    return make_tokens()
