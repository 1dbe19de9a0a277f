"""The learning-rule contract: what every rule that updates organelle adapters implements.

A rule receives one `LearningJob` per active organelle (its slot, the training examples it learns
from this generation and scratch slots it may overwrite) and returns one `LearningResult` per job:
the organelle's fitness (mean per-token answer log-likelihood) and the compute it spent, counted
in forward-token equivalents so that the colony can charge it. A rule that keeps per-organelle
state (optimizer moments) follows the colony's slots through `adopt` and checkpoints through
`state_tensors` / `load_state_tensors`, so `--resume` stays exact.

Adding a rule: copy a sibling file, give the class a `name`, say whether it is `gradient_free`
(it never back-propagates through the host), and decorate it with `register_rule`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from evolora.hosts.generation import encode, target_logprobs
from evolora.tasks import Example


@dataclass
class LearningJob:
    """One organelle's share of a learning step; `progress` is how far the run is through its
    generations (0 to 1) for rules whose step size follows a schedule (None outside a run), and
    `family` the task family its niche lies in (None for a generalist)."""

    slot: int
    examples: list[Example]
    scratch: list[int]
    progress: float | None = None
    family: str | None = None


@dataclass
class LearningResult:
    """What a rule did for one organelle: its fitness before the update, the compute spent (in
    forward-token equivalents: a backward pass counts as two forwards) and whether the update was
    kept."""

    fitness: float
    tokens: float
    accepted: bool = True


class LearningRule(ABC):
    """Updates organelle adapters in a `LoRAPopulation` attached to a frozen host."""

    name: ClassVar[str]
    gradient_free: ClassVar[bool]

    def __init__(self, settings, host, population, genes=None) -> None:
        self.settings, self.host, self.population = settings, host, population
        self.genes = genes  # the colony's gene pool (genes.py), for rules that recombine genes

    @classmethod
    def scratch_slots(cls, config) -> int:
        """Scratch slots one organelle's job needs under the ecology `config` (ES perturbations)."""
        return 0

    @abstractmethod
    def learn(self, jobs: list[LearningJob], rng: np.random.Generator) -> list[LearningResult]:
        """One update of every job's adapter; one result per job, in order."""

    def adopt(self, slot: int, parent: int | None) -> None:
        """A slot got a new occupant: grown from `parent`'s adapter, or from the colony's merged
        adapter when `parent` is None. Rules with per-slot state copy or reset it here."""
        return None

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Per-slot state to checkpoint (empty for stateless rules)."""
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what `state_tensors` returned."""
        return None


RULES: dict[str, type[LearningRule]] = {}


def register_rule(cls: type[LearningRule]) -> type[LearningRule]:
    """Class decorator: make a rule available to configs under its `name`."""
    RULES[cls.name] = cls
    return cls


def build_rules(config, host, population, genes=None) -> list[LearningRule]:
    """The rules `config.learning.rules` names, in order, on this host and population."""
    return [
        RULES[name](getattr(config.learning, name), host, population, genes)
        for name in config.learning.rules
    ]


def rule_names() -> list[str]:
    """Every registered rule's name."""
    return sorted(RULES)


def target_lengths(host, texts: list[str]) -> list[int]:
    """Token count of each text under the host's tokenizer (no special tokens)."""
    return [len(ids) for ids in host.tokenizer(texts, add_special_tokens=False)["input_ids"]]


def example_tokens(host, examples: list[Example]) -> list[int]:
    """Tokens one teacher-forced forward over each example reads (prompt and answer)."""
    texts = [ex.prompt for ex in examples] + [ex.answer + "\n" for ex in examples]
    lengths = target_lengths(host, texts)
    n = len(examples)
    return [p + a for p, a in zip(lengths[:n], lengths[n:], strict=True)]


def answer_logprobs(host, population, examples: list[Example], slots: list[int]) -> torch.Tensor:
    """Each example's mean per-token log-likelihood of its answer under its slot's adapter, on the
    population's device, differentiable when gradients are on (in the host's precision)."""
    heads = encode(host.tokenizer, [ex.prompt for ex in examples], special=True)
    tails = encode(host.tokenizer, [ex.answer + "\n" for ex in examples], special=False)
    lengths = torch.tensor([len(t) for t in tails], dtype=torch.float32, device=population.device)
    pad = host.tokenizer.pad_token_id
    with host.autocast():  # the host's precision (bf16 autocast where it pays); factors stay fp32
        total = target_logprobs(host.model, heads, tails, pad, population.route(slots))
    return total / lengths
