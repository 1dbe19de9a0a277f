"""`logic`: boolean expressions and simple syllogisms, answered true or false."""

from __future__ import annotations

import itertools
import string

import numpy as np

from evolora.tasks.base import Example, TaskFamily
from evolora.tasks.families._draw import Draws
from evolora.tasks.registry import register_family
from evolora.tasks.scorers import first_line

# operators in a boolean expression, and "all X are Y" premises in a syllogism, per difficulty
_OPERATORS = {1: 2, 2: 3, 3: 4, 4: 6, 5: 8}
_PREMISES = {3: 2, 4: 3, 5: 3}
_BINARY = ("and", "or", "xor")

Node = bool | tuple[str, "Node"] | tuple[str, "Node", "Node"]


@register_family
class LogicFamily(TaskFamily):
    """Boolean expressions (and/or/xor/not, nesting) and syllogisms; the answer is true/false.

    Format: `logic: EXPR =` -> `true`|`false`, e.g. `logic: T and not F =` -> `true`,
    `logic: (T xor F) and not (F or T) =` -> `false`. Constants are T and F; `not` applies to the
    constant or parenthesised group after it; every binary operation nested inside another is
    parenthesised, so no precedence rule is needed.
    Syllogisms: `logic: all a are b; all b are c; so all a are c =` -> `true` when the conclusion
    follows from the "all X are Y" premises by chaining them, else `false`.
    Difficulty: boolean operators 2, 3, 4, 6, 8 at difficulty 1-5; from difficulty 3 half the
    examples are syllogisms with 2, 3, 3 chained premises (shuffled from 4; at 5 with an extra
    side premise). Half the answers are true.
    Scored 1 when the first line, lower-cased, is the right word, else 0.
    """

    name = "logic"

    def generate(self, rng: np.random.Generator, difficulty: int) -> Example:
        """A balanced true/false problem at `difficulty`."""
        draw = Draws(rng)
        target = draw.coin()
        syllogism = difficulty in _PREMISES and draw.coin()
        while True:
            if syllogism:
                text, value = _syllogism(draw, difficulty)
            else:
                tree = _tree(draw, _OPERATORS[difficulty], allow_not=True)
                text, value = render(tree, top=True), evaluate(tree)
            if value == target:
                kind = "syllogism" if syllogism else "boolean"
                answer = "true" if value else "false"
                return Example(f"logic: {text} =", answer, self.name, difficulty, {"kind": kind})

    def score(self, example: Example, completion: str) -> float:
        """1.0 when the first line is the answer word (any case), else 0.0."""
        return float(first_line(completion).lower() == example.answer.lower())


def _tree(draw: Draws, n_ops: int, allow_not: bool) -> Node:
    if n_ops == 0:
        return draw.coin()
    if allow_not and draw.coin(0.3):
        return ("not", _tree(draw, n_ops - 1, allow_not=False))
    left = draw.randint(0, n_ops - 1)
    return (
        draw.choice(_BINARY),
        _tree(draw, left, allow_not=True),
        _tree(draw, n_ops - 1 - left, allow_not=True),
    )


def evaluate(node: Node) -> bool:
    """The truth value of an expression tree."""
    if isinstance(node, bool):
        return node
    if node[0] == "not":
        return not evaluate(node[1])
    op, left, right = node
    a, b = evaluate(left), evaluate(right)
    return (a and b) if op == "and" else (a or b) if op == "or" else (a != b)


def render(node: Node, top: bool = False) -> str:
    """The expression as text; nested binary operations are parenthesised."""
    if isinstance(node, bool):
        return "T" if node else "F"
    if node[0] == "not":
        return f"not {render(node[1])}"
    op, left, right = node
    text = f"{render(left)} {op} {render(right)}"
    return text if top else f"({text})"


def _syllogism(draw: Draws, difficulty: int) -> tuple[str, bool]:
    """Chained "all X are Y" premises and a conclusion; true when the chain entails it."""
    n = _PREMISES[difficulty]
    letters = draw.shuffled(string.ascii_lowercase, n + 2)
    chain = letters[: n + 1]
    premises = list(itertools.pairwise(chain))
    used = list(chain)
    if difficulty == 5:
        premises.append((draw.choice(chain[:-1]), letters[n + 1]))
        used.append(letters[n + 1])
    if difficulty >= 4:
        premises = draw.shuffled(premises)
    edges: dict[str, set[str]] = {}
    for a, b in premises:
        edges.setdefault(a, set()).add(b)
    if draw.coin():
        i = draw.randint(0, n - 2)
        subject, predicate = chain[i], chain[draw.randint(i + 2, n)]
    else:
        subject, predicate = draw.shuffled(used, 2)
    stated = "; ".join(f"all {a} are {b}" for a, b in premises)
    text = f"{stated}; so all {subject} are {predicate}"
    return text, _reaches(edges, subject, predicate)


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False
