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
    3: (3, 2, 3, (*_BASIC, "missing_comma"), 60),
    4: (4, 2, 4, _ALL, 90),
    5: (4, 3, 5, _ALL, 120),
}
_PYTHON = {"true": "True", "false": "False", "null": "None"}


@register_family
class JsonRepairFamily(TaskFamily):
    """Repair a corrupted JSON object; scored by parsed equality with partial credit over keys.

    Format: `json: BROKEN =` -> the repaired object as compact JSON (no spaces, keys in their
    original order), e.g. `json: {a:1,'b':True,} =` -> `{"a":1,"b":true}`. Keys are 1-2 lowercase
    letters; values are integers 0-99, lowercase words, true/false/null, and nested lists/objects.
    Corruptions: unquoted keys, single quotes around keys or strings, trailing commas, Python
    literals (True/False/None), a comma replaced by a space, the final `}` missing.
    Difficulty: keys / nesting depth / corruptions = 2/flat/1, 3/flat/2, 3/2/3, 4/2/4, 4/3/5;
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
            tokens = _tokens(obj, top=True)
            answer = "".join([t if t.__class__ is str else t[""] for t in tokens])
            if len(answer) + len("json:  =") + n_corrupt > longest:
                continue
            chosen = _choose_corruptions(draw, tokens, n_corrupt, kinds)
            broken = "".join(
                [t if t.__class__ is str else t[chosen.get(i, "")] for i, t in enumerate(tokens)]
            )
            prompt = f"json: {broken} ="
            if len(chosen) == n_corrupt and len(prompt) <= longest and broken != answer:
                meta = {"corruptions": sorted(chosen.values())}
                return Example(prompt, answer, self.name, difficulty, meta)

    def score(self, example: Example, completion: str) -> float:
        """Parsed equality, with partial credit over the object's keys."""
        return json_score(example.answer, completion)


def _choose_corruptions(
    draw: Draws, tokens: list[Token], n_corrupt: int, kinds: tuple[str, ...]
) -> dict[int, str]:
    """Up to `n_corrupt` distinct sites, each with one of its corruption kinds allowed in `kinds`.

    Every key and container is a site open at every difficulty, so a few random probes find
    enough; the caller redraws the object in the rare case they do not.
    """
    sites = [i for i, t in enumerate(tokens) if t.__class__ is not str]
    chosen: dict[int, str] = {}
    for _ in range(20 * n_corrupt):
        i = draw.choice(sites)
        options = [k for k in tokens[i] if k in kinds]
        if i not in chosen and options:
            chosen[i] = draw.choice(options)
            if len(chosen) == n_corrupt:
                break
    return chosen


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


# A value is written as a list of tokens: plain text, or a site `{"": clean text, kind: corrupted
# text, ...}` where one corruption may go. Joining the clean texts gives compact JSON.
Token = str | dict[str, str]


def _tokens(value: Any, top: bool = False) -> list[Token]:
    if isinstance(value, dict):
        members = []
        for key, item in value.items():
            key_site = {"": f'"{key}"', "unquoted_key": key, "single_quotes": f"'{key}'"}
            members.append([key_site, ":", *_tokens(item)])
        return _container("{", members, "}", top)
    if isinstance(value, list):
        return _container("[", [_tokens(item) for item in value], "]", top)
    if isinstance(value, str):
        return [{"": f'"{value}"', "single_quotes": f"'{value}'"}]
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    text = "true" if value is True else "false" if value is False else "null"
    return [{"": text, "python_literal": _PYTHON[text]}]


def _container(opening: str, members: list[list[Token]], closing: str, top: bool) -> list[Token]:
    tokens: list[Token] = [opening, *members[0]]
    for member in members[1:]:
        tokens += [{"": ",", "missing_comma": " "}, *member]
    tokens.append({"": "", "trailing_comma": ","})
    tokens.append({"": closing, "missing_close": ""} if top else closing)
    return tokens
