"""Scorers: known partial credit, first-line reading, and safety on hostile text."""

from __future__ import annotations

import ast
import builtins

import pytest

from evolora.errors import EvoloraError
from evolora.tasks import SCORERS, Example, score
from evolora.tasks.scorers import MAX_COMPLETION_CHARS, first_line


def ex(family: str, answer: str, **meta) -> Example:
    return Example(f"{family}: q =", answer, family, 1, meta)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("2 5 9", 1.0),
        ("2 9 5", 1 / 3),
        ("9 5 2", 1 / 3),
        ("2 5", 2 / 3),
        ("2 5 9 9", 3 / 4),
        ("", 0.0),
        ("2  5   9 \n junk", 1.0),
    ],
)
def test_sorting_partial_credit_by_position(completion, expected) -> None:
    assert score(ex("sorting", "2 5 9"), completion) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ('{"a":1,"b":2}', 1.0),
        ('{ "b": 2, "a": 1 }', 1.0),  # parsed equality: spacing and key order do not matter
        ('{"a":1,"b":3}', 0.5),
        ('{"a":1}', 0.5),
        ('{"a":1,"b":2,"c":3}', 2 / 3),
        ('{"a":true,"b":2}', 0.5),  # true is not 1
        ("{a:1,b:2}", 0.0),  # not JSON
        ("[1,2]", 0.0),
    ],
)
def test_json_repair_partial_credit_over_keys(completion, expected) -> None:
    assert score(ex("json_repair", '{"a":1,"b":2}'), completion) == pytest.approx(expected)


def test_numeric_and_logic_read_the_first_line_only() -> None:
    assert score(ex("math", "11"), " 11 \nmore") == 1.0
    assert score(ex("math", "11"), "more\n11") == 0.0
    assert score(ex("math", "-11"), "-11") == 1.0
    assert score(ex("math", "11"), "11.0") == 1.0
    assert score(ex("math", "11"), "1+10") == 0.0
    assert score(ex("logic", "true"), "TRUE") == 1.0
    assert score(ex("logic", "true"), "true or false") == 0.0
    assert score(ex("logic", "False"), "false") == 1.0  # a dataset's capitalised answer


def test_named_scorers_for_dataset_examples() -> None:
    assert score(ex("d", "Paris", scorer="contains"), "It is Paris.") == 1.0
    assert score(ex("d", "Paris", scorer="exact"), "It is Paris.") == 0.0
    assert score(ex("d", "0.5", scorer="numeric"), "5e-1") == 1.0
    assert score(ex("d", '{"k":[1]}', scorer="json"), '{"k": [1]}') == 1.0
    assert score(ex("unregistered", "x"), "x") == 1.0  # unknown family without scorer: exact
    with pytest.raises(EvoloraError, match="valid scorers are exact, numeric, json, contains"):
        score(ex("d", "x", scorer="fuzzy"), "x")


HOSTILE = [
    "__import__('os').system('echo hacked')",
    "{'a': __import__('os')}",
    "[" * 100_000,
    '{"a":' * 50_000,
    "9" * 100_000,
    "1e999999",
    "\x00\xff\ud800 bad surrogate",
    b"\xff\xfe\x00binary",
    "🙂" * 10_000,
    "\n\n\n",
]


@pytest.mark.parametrize("completion", HOSTILE)
@pytest.mark.parametrize("scorer", sorted(SCORERS))
def test_hostile_completions_are_never_executed_and_never_raise(monkeypatch, completion, scorer):
    def forbidden(*args, **kwargs):
        raise AssertionError("scoring must not evaluate model output")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    monkeypatch.setattr(ast, "literal_eval", forbidden)
    for family in ("math", "logic", "sorting", "sequence", "json_repair"):
        assert 0.0 <= score(ex(family, '{"a":1}'), completion) <= 1.0
    assert 0.0 <= score(ex("d", '{"a":1}', scorer=scorer), completion) <= 1.0


def test_first_line_caps_length_and_accepts_bytes() -> None:
    assert len(first_line("x" * (10 * MAX_COMPLETION_CHARS))) == MAX_COMPLETION_CHARS
    assert first_line(b"12\n34") == "12"
    assert first_line(None) == ""
    assert first_line("a\r\nb") == "a"
