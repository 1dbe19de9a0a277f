"""Named scorers that judge a completion against a reference answer, safely, in [0, 1].

Every scorer reads only the completion's first line (generation stops at a newline), stripped,
within the first `MAX_COMPLETION_CHARS` characters. Nothing here ever executes model output: the
only parser applied to it is `json.loads`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_COMPLETION_CHARS = 2000

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def first_line(completion: Any) -> str:
    """The stripped first line of a completion (bytes are decoded leniently, length is capped)."""
    if isinstance(completion, (bytes, bytearray)):
        completion = bytes(completion[:MAX_COMPLETION_CHARS]).decode("utf-8", "replace")
    elif not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    head = completion[:MAX_COMPLETION_CHARS]
    return head.split("\n", 1)[0].split("\r", 1)[0].strip()


def normalise_spaces(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def exact_score(answer: str, completion: Any) -> float:
    """1.0 when the first line equals the answer up to whitespace runs, else 0.0."""
    return float(normalise_spaces(first_line(completion)) == normalise_spaces(answer))


def parse_number(text: str) -> int | float | None:
    """The number `text` spells exactly (integer or decimal), or None; never evaluates anything."""
    text = text.strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else None
    return None


def numeric_score(answer: str, completion: Any) -> float:
    """1.0 when the first line is a number equal to the answer's (tolerance 1e-9), else 0.0."""
    expected = parse_number(answer)
    got = parse_number(first_line(completion))
    if expected is None or got is None:
        return exact_score(answer, completion)
    if isinstance(expected, int) and isinstance(got, int):
        return float(expected == got)
    return float(math.isclose(float(expected), float(got), rel_tol=1e-9, abs_tol=1e-9))


def contains_score(answer: str, completion: Any) -> float:
    """1.0 when the answer (whitespace-normalised) occurs inside the first line, else 0.0."""
    needle = normalise_spaces(answer)
    return float(bool(needle) and needle in normalise_spaces(first_line(completion)))


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` is valid JSON, else (False, None); `json.loads` only."""
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def same_json(a: Any, b: Any) -> bool:
    """Structural JSON equality that keeps true/false apart from 1/0 (Python's == does not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def json_score(answer: str, completion: Any) -> float:
    """1.0 when the first line parses to the answer's JSON value; for objects, partial credit.

    Partial credit is the share of keys (over both objects' keys) whose values match exactly, so
    a missing, extra or wrong key each costs the same; anything unparsable scores 0.
    """
    ok_ref, expected = parse_json(answer)
    ok, got = parse_json(first_line(completion))
    if not ok_ref:
        return exact_score(answer, completion)
    if not ok:
        return 0.0
    if same_json(expected, got):
        return 1.0
    if isinstance(expected, dict) and isinstance(got, dict):
        keys = expected.keys() | got.keys()
        right = sum(1 for k in expected if k in got and same_json(expected[k], got[k]))
        return right / len(keys)
    return 0.0


def position_overlap_score(answer: str, completion: Any) -> float:
    """Share of positions where the completion's tokens equal the answer's, over the longer list."""
    expected = answer.split()
    got = first_line(completion).split()
    longest = max(len(expected), len(got))
    if longest == 0:
        return 1.0
    return sum(1 for x, y in zip(expected, got, strict=False) if x == y) / longest


SCORERS: dict[str, Callable[[str, Any], float]] = {
    "exact": exact_score,
    "numeric": numeric_score,
    "json": json_score,
    "contains": contains_score,
}
