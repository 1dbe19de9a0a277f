"""Every registered family (built-in or user) must pass this suite."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolora.errors import EvoloraError
from evolora.tasks import (
    DIFFICULTIES,
    MAX_DIFFICULTY,
    MIN_DIFFICULTY,
    family_names,
    get_family,
    score,
)

FAMILIES = family_names()
seeds = st.integers(min_value=0, max_value=2**32 - 1)
difficulties = st.integers(min_value=MIN_DIFFICULTY, max_value=MAX_DIFFICULTY)
junk = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.text(alphabet=st.characters(codec="ascii"), max_size=300),
    st.builds(lambda s: s * 50, st.text(min_size=1, max_size=60)),
)


def draw(name: str, seed: int, difficulty: int):
    return get_family(name).sample(np.random.default_rng(seed), difficulty)


def test_builtin_families_are_registered() -> None:
    assert {"math", "logic", "sorting", "sequence", "json_repair"} <= set(FAMILIES)


@pytest.mark.parametrize("name", FAMILIES)
@settings(max_examples=60, deadline=None)
@given(seed=seeds, difficulty=difficulties, completion=junk)
def test_score_of_any_text_is_a_float_in_unit_interval(name, seed, difficulty, completion) -> None:
    example = draw(name, seed, difficulty)
    value = score(example, completion)
    assert isinstance(value, float)
    assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("name", FAMILIES)
@settings(max_examples=60, deadline=None)
@given(seed=seeds, difficulty=difficulties)
def test_reference_answer_scores_one(name, seed, difficulty) -> None:
    example = draw(name, seed, difficulty)
    assert score(example, example.answer) == 1.0
    assert score(example, f"  {example.answer}  \nanything after the first line") == 1.0


@pytest.mark.parametrize("name", FAMILIES)
@settings(max_examples=60, deadline=None)
@given(seed=seeds, difficulty=difficulties, suffix=st.sampled_from(["9", "x", "]", " 0"]))
def test_wrong_answer_scores_below_one(name, seed, difficulty, suffix) -> None:
    example = draw(name, seed, difficulty)
    assert score(example, example.answer + suffix) < 1.0
    assert score(example, "") < 1.0
    assert score(example, "\n" + example.answer) < 1.0  # only the first line counts


@pytest.mark.parametrize("name", FAMILIES)
def test_prompt_and_answer_format(name) -> None:
    rng = np.random.default_rng(7)
    tags = set()
    for difficulty in DIFFICULTIES:
        for _ in range(300):
            example = get_family(name).sample(rng, difficulty)
            for text in (example.prompt, example.answer):
                assert text and text.isascii() and text.isprintable(), text  # one line, ASCII
                assert text == text.strip()
            assert example.prompt.endswith("=")
            assert len(example.prompt) <= (60 if difficulty <= 3 else 120), example.prompt
            assert example.family == name and example.difficulty == difficulty
            tags.add(example.prompt.split(":", 1)[0].split()[0])
    assert len(tags) == 1, f"{name} prompts should share one family tag, got {tags}"


def test_family_tags_tell_families_apart() -> None:
    rng = np.random.default_rng(3)
    tag_of = {n: get_family(n).sample(rng, 3).prompt.split(":")[0].split()[0] for n in FAMILIES}
    assert len(set(tag_of.values())) == len(FAMILIES)


@pytest.mark.parametrize("name", FAMILIES)
def test_prompt_determines_answer(name) -> None:
    rng = np.random.default_rng(11)
    answer_of: dict[str, str] = {}
    for i in range(5000):
        example = get_family(name).sample(rng, DIFFICULTIES[i % len(DIFFICULTIES)])
        assert answer_of.setdefault(example.prompt, example.answer) == example.answer


@pytest.mark.parametrize("name", ["math", "logic", "sorting", "json_repair"])
def test_difficulty_makes_prompts_longer(name) -> None:
    rng = np.random.default_rng(5)
    mean_length = [
        np.mean([len(get_family(name).sample(rng, d).prompt) for _ in range(400)])
        for d in DIFFICULTIES
    ]
    assert mean_length == sorted(mean_length), mean_length
    assert mean_length[-1] > 1.5 * mean_length[0]


def test_difficulty_adds_sequence_rules_and_defeats_extrapolation() -> None:
    rng = np.random.default_rng(5)
    kinds, extrapolated = [], []
    for d in DIFFICULTIES:
        examples = [get_family("sequence").sample(rng, d) for _ in range(400)]
        kinds.append({e.meta["kind"] for e in examples})
        terms = [[int(t) for t in e.prompt[5:-2].split()] for e in examples]
        hits = [str(2 * t[-1] - t[-2]) == e.answer for t, e in zip(terms, examples, strict=True)]
        extrapolated.append(np.mean(hits))
    assert [len(k) for k in kinds] == [1, 2, 3, 4, 4]
    assert extrapolated[0] == 1.0 and extrapolated[-1] < 0.5


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("bad", [0, MAX_DIFFICULTY + 1, -1, "3", 2.5, True])
def test_difficulty_out_of_range_lists_valid_values(name, bad) -> None:
    with pytest.raises(EvoloraError, match="valid values are 1, 2, 3, 4, 5"):
        get_family(name).sample(np.random.default_rng(0), bad)


def test_unknown_family_lists_valid_names() -> None:
    with pytest.raises(EvoloraError, match=r"valid families are .*math"):
        get_family("maths")
