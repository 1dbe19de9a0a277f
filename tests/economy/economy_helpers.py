"""Helpers shared by the economy tests (a module: `conftest` names clash across folders)."""

from __future__ import annotations

from evolora.economy.config import EconomyConfig


def tiny_config(**overrides) -> EconomyConfig:
    """A few-second run: small batches, two adapted projections, frequent rounds, no lr search."""
    data = {
        "seed": 0,
        "workload": {
            "task": "easy",
            "steps": 12,
            "batch_size": 4,
            "rank": 4,
            "max_rank": 8,
            "targets": ["q_proj", "v_proj"],
            "val_examples": 8,
            "probe_examples": 4,
            "test_per_cell": 1,
            "max_new_tokens": 8,
            "eval_every": 4,
            "checkpoint_every": 4,
        },
        "agents": {"decide_every": 2},
        "search": {"enabled": False},  # tests of the lr search turn it on
    }
    for key, value in overrides.items():
        data.setdefault(key, {})
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    return EconomyConfig.model_validate(data)
