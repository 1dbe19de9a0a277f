"""`json_repair`: repair a corrupted JSON object."""

from __future__ import annotations

from typing import Any

import numpy as np

from evolora.tasks.base import Example, TaskFamily
from evolora.tasks.families._draw import Draws
from evolora.tasks.registry import register_family
from evolora.tasks.scorers import json_score

_BASIC = ("unquoted_key", "single_quotes", "trailing_comma", "python_literal")
_ALL = (*_BASIC, "missing_comma", "missing_close")
# (top-level keys, nesting depth, corruptions, corruption kinds, longest prompt) per difficulty
_LEVELS = {
    1: (2, 1, 1, _BASIC, 60),
    2: (3, 1, 2, (*_BASIC, "missing_comma"), 60),
    3: (3, 2, 2, (*_BASIC, "missing_comma"), 60),
    4: (4, 2, 3, _ALL, 90),
    5: (4, 3, 4, _ALL, 120),
}
_PYTHON = {"true": "True", "false": "False", "null": "None"}
_KEY_KINDS = ("unquoted_key", "single_quotes")


@register_family
class JsonRepairFamily(TaskFamily):
    """Repair a corrupted JSON object; scored by parsed equality with partial credit over keys.

    Format: `json: BROKEN =` -> the repaired object as compact JSON (no spaces, keys in their
    original order), e.g. `json: {a:1,'b':True,} =` -> `{"a":1,"b":true}`. Keys are 1-2 lowercase
    letters; values are integers 0-99, lowercase words, true/false/null, and nested lists/objects.
    Corruptions: unquoted keys, single quotes around keys or strings, trailing commas, Python
    literals (True/False/None), a comma replaced by a space, the final `}` missing.
    Difficulty: keys / nesting depth / corruptions = 2/flat/1, 3/flat/2, 3/2/2, 4/2/3, 4/3/4;
    the missing comma from 2, the missing `}` from 4. Prompts stay within 60 characters at
    difficulty 1-3, 90 at 4, 120 at 5.
    Scored 1 when the first line parses (json.loads) to the same value; for an object with some
    keys right, the share of keys (over both objects) whose values match.
    """

    name = "json_repair"

    def generate(self, rng: np.random.Generator, difficulty: int) -> Example:
        """A random object at `difficulty`, corrupted, with its compact JSON as the answer."""
        draw = Draws(rng)
        n_keys, depth, n_corrupt, kinds, longest = _LEVELS[difficulty]
        while True:
            obj = _object(draw, n_keys, depth, force_nested=depth > 1)
            clean = _Renderer({})
            answer = clean.value(obj, top=True)  # compact JSON: no spaces, keys in order
            if len(answer) + len("json:  =") + n_corrupt > longest:
                continue
            sites = [(i, [k for k in opts if k in kinds]) for i, opts in enumerate(clean.sites)]
            sites = [(i, opts) for i, opts in sites if opts]
            chosen = draw.shuffled(sites, n_corrupt)
            renderer = _Renderer({i: draw.choice(opts) for i, opts in chosen})
            broken = renderer.value(obj, top=True)
            prompt = f"json: {broken} ="
            if len(prompt) <= longest and broken != answer:
                meta = {"corruptions": sorted(renderer.corruptions.values())}
                return Example(prompt, answer, self.name, difficulty, meta)

    def score(self, example: Example, completion: str) -> float:
        """Parsed equality, with partial credit over the object's keys."""
        return json_score(example.answer, completion)


def _scalar(draw: Draws) -> Any:
    roll = draw.uniform()
    if roll < 0.3:
        return draw.randint(0, 99)
    if roll < 0.65:
        return draw.word(2, 4)
    return draw.choice((True, False, None))


def _value(draw: Draws, depth: int) -> Any:
    if depth <= 1 or draw.coin(0.6):
        return _scalar(draw)
    if draw.coin():
        return [_value(draw, depth - 1) for _ in range(draw.randint(2, 3))]
    return _object(draw, draw.randint(1, 2), depth - 1, force_nested=False)


def _object(draw: Draws, n_keys: int, depth: int, force_nested: bool) -> dict:
    keys: list[str] = []
    while len(keys) < n_keys:
        key = draw.word(1, 2)
        if key not in keys:
            keys.append(key)
    nested = draw.randint(0, n_keys - 1) if force_nested else -1
    obj = {}
    for i, key in enumerate(keys):
        if i == nested:
            obj[key] = (
                [_value(draw, depth - 1) for _ in range(draw.randint(2, 3))]
                if draw.coin()
                else _object(draw, draw.randint(1, 2), depth - 1, force_nested=False)
            )
        else:
            obj[key] = _value(draw, depth)
    return obj


class _Renderer:
    """Writes a value as compact JSON, corrupting the numbered sites listed in `corruptions`.

    Every place a corruption could go is a site, numbered in writing order; a first pass with no
    corruptions collects the sites and the kinds each admits.
    """

    def __init__(self, corruptions: dict[int, str]) -> None:
        self.corruptions = corruptions
        self.sites: list[tuple[str, ...]] = []

    def _site(self, *kinds: str) -> str | None:
        self.sites.append(kinds)
        return self.corruptions.get(len(self.sites) - 1)

    def value(self, value: Any, top: bool = False) -> str:
        if isinstance(value, dict):
            members = [f"{self._key(k)}:{self.value(v)}" for k, v in value.items()]
            return self._container("{", members, "}", top)
        if isinstance(value, list):
            return self._container("[", [self.value(v) for v in value], "]", top)
        if isinstance(value, str):
            return f"'{value}'" if self._site("single_quotes") else f'"{value}"'
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        text = "true" if value is True else "false" if value is False else "null"
        return _PYTHON[text] if self._site("python_literal") else text

    def _key(self, key: str) -> str:
        kind = self._site(*_KEY_KINDS)
        return key if kind == "unquoted_key" else f"'{key}'" if kind else f'"{key}"'

    def _container(self, opening: str, members: list[str], closing: str, top: bool) -> str:
        text = opening + members[0]
        for member in members[1:]:
            text += (" " if self._site("missing_comma") else ",") + member
        if self._site("trailing_comma"):
            text += ","
        if top and self._site("missing_close"):
            return text
        return text + closing
