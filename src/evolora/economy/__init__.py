"""MACO-LLM: an agent economy that steers LoRA fine-tuning online, every proposal applied.

    from evolora.economy import EconomyConfig, run_economy
    final = run_economy(EconomyConfig())          # plain PyTorch loop on the built-in host
    trainer.add_callback(EconomyCallback(config, tokenizer))   # or inside transformers.Trainer

Torch and transformers load only when `run_economy`, `Job` or `EconomyCallback` is first used.
"""

from __future__ import annotations

from evolora.economy.config import EconomyConfig, Role
from evolora.economy.controller import Economy, Proposal

__all__ = ["Economy", "EconomyCallback", "EconomyConfig", "Job", "Proposal", "Role", "run_economy"]


def __getattr__(name: str):
    if name == "EconomyCallback":
        from evolora.economy.callback import EconomyCallback

        return EconomyCallback
    if name in ("Job", "run_economy"):
        from evolora.economy import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'evolora.economy' has no attribute {name!r}")
