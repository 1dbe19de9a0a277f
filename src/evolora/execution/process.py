"""Run items in a pool of spawned worker processes (safe with torch, threads and CUDA).

A worker that dies (segfault, OOM kill, `os._exit`) breaks the whole pool, and every item in
flight with it (running or queued) is suspect, since the pool cannot say which one was running.
Each suspect is then run by itself in a fresh pool, where a death is surely its own; an item that
dies by itself is retried once, and a second death is an `ExecutionError` naming it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from evolora.errors import EvoloraError
from evolora.execution.base import ExecutionError, Executor, Item, Result, describe_exception


class ProcessExecutor(Executor):
    """Maps over items with `workers` spawned processes (default: one per CPU core).

    The pool starts on the first `map` and is reused until `close()`. Not for concurrent use
    from several threads. As with any spawn pool, a script using it needs the usual
    `if __name__ == "__main__":` guard, because workers re-import the main module.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise EvoloraError(f"workers must be a positive integer, got {workers!r}.")
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
        """`[fn(item) for item in items]` across the workers, results in input order."""
        items = list(items)
        results: list[Any] = [None] * len(items)
        waiting = deque(range(len(items)))
        while waiting:
            lost = self._run(fn, items, waiting, results, window=2 * self.workers)
            for index in lost:
                self._run_alone(fn, items, index, results)
        return results

    def _run_alone(
        self, fn: Callable[[Any], Any], items: list[Any], index: int, results: list[Any]
    ) -> None:
        """Run one suspect item by itself; a death there is surely its own, and gets one retry."""
        for _attempt in range(2):
            if not self._run(fn, items, deque([index]), results, window=1):
                return
        raise ExecutionError(
            index,
            items[index],
            "its worker process died twice (killed or exited without returning a result)",
        )

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _run(
        self,
        fn: Callable[[Any], Any],
        items: list[Any],
        waiting: deque[int],
        results: list[Any],
        window: int,
    ) -> list[int]:
        """Run the `waiting` indices (at most `window` in flight) into `results`.

        Returns the indices lost when a worker died (the pool is then discarded and the rest stay
        in `waiting`); an empty list when everything finished.
        """
        pool = self._get_pool()
        running: dict[Future[Any], int] = {}
        lost: list[int] = []
        try:
            while (waiting or running) and not lost:
                while waiting and len(running) < window and not lost:
                    index = waiting.popleft()
                    try:
                        running[pool.submit(fn, items[index])] = index
                    except BrokenProcessPool:  # a worker died since the last wait
                        lost.append(index)
                if lost:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    index = running.pop(future)
                    problem = future.exception()
                    if problem is None:
                        results[index] = future.result()
                    elif isinstance(problem, BrokenProcessPool):
                        lost.append(index)
                    else:
                        raise ExecutionError(
                            index, items[index], describe_exception(problem)
                        ) from problem
        finally:
            for future in running:
                future.cancel()
        if lost:
            lost.extend(running.values())
            self._discard_pool()
        return sorted(lost)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
