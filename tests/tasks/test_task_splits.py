"""Deterministic splits: a prompt is always in one split; the same seed gives the same stream."""

from __future__ import annotations

import numpy as np
import pytest

from evolora.errors import EvoloraError
from evolora.tasks import DIFFICULTIES, HOLDOUT_FRACTION, family_names, get_family, split_of

FAMILIES = family_names()
SAMPLES_PER_FAMILY = 100_000


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_no_prompt_in_both_splits_over_100k_samples(name) -> None:
    family = get_family(name)
    rng = np.random.default_rng(2024)
    split_of_prompt: dict[str, str] = {}
    for i in range(SAMPLES_PER_FAMILY):
        example = family.sample(rng, DIFFICULTIES[i % len(DIFFICULTIES)])
        split = split_of(example)
        assert split_of_prompt.setdefault(example.prompt, split) == split
    holdout = sum(s == "holdout" for s in split_of_prompt.values()) / len(split_of_prompt)
    assert len(split_of_prompt) > 10_000
    assert abs(holdout - HOLDOUT_FRACTION) < 0.02


@pytest.mark.parametrize("name", FAMILIES)
def test_sampling_a_split_yields_only_that_split(name) -> None:
    family = get_family(name)
    rng = np.random.default_rng(1)
    prompts = {}
    for split in ("train", "holdout"):
        examples = [family.sample(rng, d, split=split) for d in DIFFICULTIES for _ in range(200)]
        assert {split_of(e) for e in examples} == {split}
        prompts[split] = {e.prompt for e in examples}
    assert not prompts["train"] & prompts["holdout"]


@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_stream(name) -> None:
    def stream(seed: int) -> list[tuple]:
        rng = np.random.default_rng(seed)
        examples = [
            get_family(name).sample(rng, d, s) for d in DIFFICULTIES for s in (None, "holdout")
        ]
        return [(e.prompt, e.answer, e.difficulty, dict(e.meta)) for e in examples]

    assert stream(42) == stream(42)
    assert stream(42) != stream(43)


def test_split_is_a_stable_hash_of_the_prompt() -> None:
    # fixed expectations: the split must not change across processes, machines or releases
    assert split_of("logic: not F =") == "holdout"
    assert split_of("logic: not T =") == "train"
    assert split_of("math: 3+4=") == split_of("math: 3+4=")
    example = get_family("math").sample(np.random.default_rng(0), 1)
    assert split_of(example) == split_of(example.prompt)


def test_unknown_split_lists_valid_splits() -> None:
    with pytest.raises(EvoloraError, match="valid splits are train, holdout"):
        get_family("math").sample(np.random.default_rng(0), 1, split="test")
