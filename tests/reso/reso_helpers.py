"""Shared builders for the reso tests: tiny seeded models and the built-in tokenizer."""

from __future__ import annotations

import torch
from transformers import AutoTokenizer

from evolora.hosts.loading import BUILTIN_DIR
from evolora.reso import ResoForCausalLM, preset_config


def tiny(seed: int = 0, ablate: tuple[str, ...] = (), **overrides) -> ResoForCausalLM:
    """A tiny Reso model (2 layers, 64 wide) initialised from `seed`, in eval mode."""
    torch.manual_seed(seed)
    return ResoForCausalLM(preset_config("tiny", ablate=ablate, overrides=overrides)).eval()


def tokenizer():
    """The built-in host's tokenizer."""
    return AutoTokenizer.from_pretrained(BUILTIN_DIR)


def tokens(seed: int = 0, length: int = 12, batch: int = 2) -> torch.Tensor:
    """Random token ids (batch, length) without repeated bigrams."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(1500, generator=g)[: batch * length].view(batch, length) + 3
