"""The executor contract: `map(fn, items)` returns `[fn(item) for item in items]`, in input order.

Executors differ only in where the calls run (this process, worker processes, a Ray cluster).
`fn` and the items must be picklable for the process and Ray executors (a module-level function,
not a lambda). A failing item stops the map with an `ExecutionError` naming the item.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from evolora.errors import EvoloraError

Item = TypeVar("Item")
Result = TypeVar("Result")


class ExecutionError(EvoloraError):
    """An item of an `Executor.map` failed; `index` and `item` say which one."""

    def __init__(self, index: int, item: Any, reason: str) -> None:
        self.index = index
        self.item = item
        super().__init__(f"Item {index} ({describe_item(item)}) failed: {reason}")


def describe_item(item: Any, limit: int = 80) -> str:
    """A short repr of an item for error messages."""
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_exception(problem: BaseException, limit: int = 300) -> str:
    """`"ValueError: message"` on one line (the type alone when the message is empty)."""
    message = " ".join(str(problem).split())
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return f"{type(problem).__name__}: {message}" if message else type(problem).__name__


class Executor(abc.ABC):
    """Runs a function over items somewhere; a context manager that releases its workers."""

    @abc.abstractmethod
    def map(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
        """`[fn(item) for item in items]`, possibly in parallel, results in input order."""

    def close(self) -> None:  # noqa: B027 (an optional hook: not every executor holds workers)
        """Release workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
