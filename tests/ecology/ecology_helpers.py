"""Small ecology configs and an answer log-likelihood probe for the ecology tests."""

from __future__ import annotations

import hashlib

import numpy as np

from evolora.ecology.config import EcologyConfig
from evolora.ecology.learning import target_lengths

FAMILIES = ["math", "logic"]


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
        "learning": {"batch": 2, "es": {"pairs": 2}},
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


def hash_scorer(salt: str):
    """A stand-in task scorer: 0, 0.5 or 1 from a hash of the prompt and completion, so that
    different adapters win and lose at random on a host too small to answer anything."""

    def score(example, completion: str) -> float:
        text = salt + example.prompt + completion
        return (0.0, 0.5, 1.0)[hashlib.sha256(text.encode()).digest()[0] % 3]

    return score
