"""A session-wide built-in host and a tiny economy config for fast real runs."""

from __future__ import annotations

import pytest

from evolora.economy.config import EconomyConfig


@pytest.fixture(scope="session")
def host():
    """The built-in host (each Job deep-copies its model before PEFT wraps it)."""
    from evolora.hosts import load_host

    return load_host("builtin")


def tiny_config(**overrides) -> EconomyConfig:
    """A few-second run: small batches, two adapted projections, frequent rounds."""
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
    }
    for key, value in overrides.items():
        data.setdefault(key, {})
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    return EconomyConfig.model_validate(data)
