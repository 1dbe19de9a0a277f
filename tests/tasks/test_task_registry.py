"""A user adds a family by registering a class; the registry and top-level score pick it up."""

from __future__ import annotations

import numpy as np
import pytest

from evolora.errors import EvoloraError
from evolora.tasks import (
    Example,
    TaskFamily,
    TaskGrid,
    family_names,
    get_family,
    register_family,
    registry,
    score,
    split_of,
)


@pytest.fixture
def restore_registry(monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))


def test_user_family_registers_samples_and_scores(restore_registry) -> None:
    @register_family
    class Reverse(TaskFamily):
        """Reverse a word."""

        name = "reverse"

        def generate(self, rng, difficulty):
            word = "".join(rng.choice(list("abcdef"), size=difficulty + 2))
            return Example(f"rev: {word} =", word[::-1], self.name, difficulty, {})

    assert "reverse" in family_names()
    family = get_family("reverse")
    assert family.describe() == "Reverse a word."
    example = family.sample(np.random.default_rng(0), 3, split="holdout")
    assert split_of(example) == "holdout"
    assert score(example, example.answer) == 1.0  # default scorer: exact first line
    assert score(example, example.answer + "x") == 0.0
    grid = TaskGrid(["reverse", "math"], [1])
    assert {e.family for e in grid.sample_batch(np.random.default_rng(0), 40)} == {
        "reverse",
        "math",
    }


def test_register_rejects_non_families_and_bad_names(restore_registry) -> None:
    with pytest.raises(EvoloraError, match="TaskFamily subclass"):
        register_family(object)

    class Nameless(TaskFamily):
        def generate(self, rng, difficulty):
            raise AssertionError

    with pytest.raises(EvoloraError, match="needs a non-empty `name`"):
        register_family(Nameless)


def test_example_equality_ignores_meta() -> None:
    a = Example("math: 1+1=", "2", "math", 1, {"x": [1]})
    b = Example("math: 1+1=", "2", "math", 1, {})
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.prompt = "other"  # frozen
