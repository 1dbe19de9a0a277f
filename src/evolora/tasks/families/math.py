"""`math`: integer arithmetic with + - * and parentheses."""

from __future__ import annotations

import numpy as np

from evolora.tasks.base import Example, TaskFamily
from evolora.tasks.families._draw import Draws
from evolora.tasks.registry import register_family
from evolora.tasks.scorers import numeric_score

# (operators, largest operand, operators allowed, flat: no parentheses) per difficulty
_LEVELS = {
    1: (1, 9, "+-", True),
    2: (2, 9, "+-*", True),
    3: (3, 19, "+-*", False),
    4: (4, 49, "+-*", False),
    5: (5, 99, "+-*", False),
}
MAX_ABS_ANSWER = 99_999
_PRECEDENCE = {"+": 1, "-": 1, "*": 2}

Node = int | tuple[str, "Node", "Node"]


@register_family
class MathFamily(TaskFamily):
    """Integer arithmetic with + - * and parentheses; the answer is the integer value.

    Format: `math: EXPR=` -> `VALUE`, e.g. `math: 3+4*2=` -> `11`, `math: (12-7)*3-40=` -> `-25`.
    EXPR has no spaces; operands are non-negative integers; * binds tighter than + and -, all
    left-associative; parentheses appear only where the grouping needs them. |VALUE| <= 99999.
    Difficulty: 1 = one of + -, operands 0-9; 2 = two operators (+ - *), operands 0-9, no
    parentheses; 3, 4, 5 = 3, 4, 5 operators on operands up to 19, 49, 99, random groupings.
    Scored 1 when the first line is the same integer, else 0.
    """

    name = "math"

    def generate(self, rng: np.random.Generator, difficulty: int) -> Example:
        """A random expression at `difficulty` whose value fits MAX_ABS_ANSWER."""
        draw = Draws(rng)
        n_ops, largest, ops, flat = _LEVELS[difficulty]
        while True:
            build = _flat_tree if flat else _tree
            tree = build(draw, n_ops, largest, ops)
            value = evaluate(tree)
            if abs(value) <= MAX_ABS_ANSWER:
                return Example(f"math: {render(tree)}=", str(value), self.name, difficulty, {})

    def score(self, example: Example, completion: str) -> float:
        """1.0 for the exact integer on the first line, else 0.0."""
        return numeric_score(example.answer, completion)


def _tree(draw: Draws, n_ops: int, largest: int, ops: str) -> Node:
    if n_ops == 0:
        return draw.randint(0, largest)
    left = draw.randint(0, n_ops - 1)
    return (
        draw.choice(ops),
        _tree(draw, left, largest, ops),
        _tree(draw, n_ops - 1 - left, largest, ops),
    )


def _flat_tree(draw: Draws, n_ops: int, largest: int, ops: str) -> Node:
    """The tree that precedence gives a random parenthesis-free `a op b op c ...`."""
    operands = [draw.randint(0, largest) for _ in range(n_ops + 1)]
    operators = [draw.choice(ops) for _ in range(n_ops)]
    terms: list[Node] = [operands[0]]
    signs: list[str] = []
    for op, operand in zip(operators, operands[1:], strict=True):
        if op == "*":
            terms[-1] = ("*", terms[-1], operand)
        else:
            signs.append(op)
            terms.append(operand)
    tree = terms[0]
    for sign, term in zip(signs, terms[1:], strict=True):
        tree = (sign, tree, term)
    return tree


def evaluate(node: Node) -> int:
    """The integer value of an expression tree."""
    if isinstance(node, int):
        return node
    op, left, right = node
    a, b = evaluate(left), evaluate(right)
    return a + b if op == "+" else a - b if op == "-" else a * b


def render(node: Node) -> str:
    """The expression as text with only the parentheses its grouping needs."""
    if isinstance(node, int):
        return str(node)
    op, left, right = node
    text_left, text_right = render(left), render(right)
    if not isinstance(left, int) and _PRECEDENCE[left[0]] < _PRECEDENCE[op]:
        text_left = f"({text_left})"
    if not isinstance(right, int) and (
        _PRECEDENCE[right[0]] < _PRECEDENCE[op] or (right[0] in "+-" and op == "-")
    ):
        text_right = f"({text_right})"
    return f"{text_left}{op}{text_right}"
