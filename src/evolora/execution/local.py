"""Run every item in this process, one after another: the reference executor."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from evolora.execution.base import ExecutionError, Executor, Item, Result, describe_exception


class LocalExecutor(Executor):
    """Calls `fn` on each item in order, in the calling process."""

    def map(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
        """`[fn(item) for item in items]`; the first failure raises `ExecutionError`."""
        results = []
        for index, item in enumerate(items):
            try:
                results.append(fn(item))
            except Exception as problem:
                raise ExecutionError(index, item, describe_exception(problem)) from problem
        return results
