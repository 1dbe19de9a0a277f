"""The colony's tensors: every organelle's adapter and every learning rule's per-slot state, as
one flat dict for checkpoints and for the Ray shards (which copy slots' rows in and out)."""

from __future__ import annotations

import torch


def learning_state(population, rules) -> dict[str, torch.Tensor]:
    """The population's tables ("<layer>.A", "<layer>.B") and each rule's state under
    "rule/<name>/"; every tensor is indexed by slot along its first dimension."""
    tensors = dict(population.state_tensors())
    for rule in rules:
        tensors.update({f"rule/{rule.name}/{k}": v for k, v in rule.state_tensors().items()})
    return tensors


def load_learning_state(population, rules, tensors: dict[str, torch.Tensor]) -> None:
    """Restore what `learning_state` returned (other keys, e.g. "genes/...", are ignored)."""
    own, parts = split_tensors(tensors)
    population.load_state_tensors(own)
    for rule in rules:
        rule.load_state_tensors(parts.get(f"rule/{rule.name}", {}))


def split_tensors(tensors: dict) -> tuple[dict, dict[str, dict]]:
    """A checkpoint's tensors split into the population's and the other parts' ("rule/NAME",
    "genes"), each with its own keys."""
    population, parts = {}, {}
    for key, value in tensors.items():
        if key.startswith("rule/"):
            _, name, rest = key.split("/", 2)
            parts.setdefault(f"rule/{name}", {})[rest] = value
        elif key.startswith("genes/"):
            parts.setdefault("genes", {})[key.split("/", 1)[1]] = value
        else:
            population[key] = value
    return population, parts
