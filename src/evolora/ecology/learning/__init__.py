"""Learning rules for organelle adapters: one file per rule, all behind the contract in base.py.

`backprop` (Adam, gradients through the frozen host: the reference); `es`, `hebbian` and
`compose` (gradient-free; `compose` recombines genes of the gene pool). Importing this package
registers every rule.
"""

from evolora.ecology.learning import backprop, compose, es, hebbian  # noqa: F401 (registers)
from evolora.ecology.learning.base import (
    RULES,
    LearningJob,
    LearningResult,
    LearningRule,
    answer_logprobs,
    build_rules,
    example_tokens,
    register_rule,
    rule_names,
    target_lengths,
)

__all__ = [
    "RULES",
    "LearningJob",
    "LearningResult",
    "LearningRule",
    "answer_logprobs",
    "build_rules",
    "example_tokens",
    "register_rule",
    "rule_names",
    "target_lengths",
]
