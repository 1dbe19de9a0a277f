"""Run items in spawned worker processes (safe with torch, threads and CUDA).

Each worker is a process of our own with a pipe to this one, and runs one item at a time, so a
worker that dies (segfault, OOM kill, `os._exit`) is seen at once through its process sentinel
and the item it held is known. That item is retried once in a fresh worker; a second death is an
`ExecutionError` naming it. (`concurrent.futures.ProcessPoolExecutor` cannot say which item a dead
worker held, and on Python 3.11 its shutdown can deadlock after a worker is killed.)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

from evolora.errors import EvoloraError
from evolora.execution.base import ExecutionError, Executor, Item, Result, describe_exception

_JOIN_SECONDS = 5.0


def _serve(conn: Connection) -> None:
    """A worker's loop: receive `(fn, item)`, send back `(True, result)` or `(False, error)`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent is gone
            return
        except Exception as problem:  # fn or the item cannot be unpickled in a worker
            conn.send((False, RuntimeError(describe_exception(problem))))
            continue
        if job is None:
            return
        fn, item = job
        try:
            reply = (True, fn(item))
        except Exception as problem:  # any failure of fn is reported, not raised
            reply = (False, problem)
        try:
            conn.send(reply)
        except Exception as problem:  # e.g. an unpicklable result or exception
            conn.send((False, RuntimeError(describe_exception(problem))))


class _WorkerDied(Exception):
    """The worker process ended (and was cleaned up) without replying."""


class _Worker:
    """One spawned process, the pipe to it, and the index of the item it is running (if any)."""

    def __init__(self, context: multiprocessing.context.SpawnContext) -> None:
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_conn,), daemon=True)
        self.process.start()
        child_conn.close()
        self.index: int | None = None

    def submit(self, fn: Callable[[Any], Any], item: Any, index: int) -> None:
        """Start `fn(item)`; raises `_WorkerDied` if the process is gone, a pickling error as is."""
        try:
            self.conn.send((fn, item))
        except OSError:
            self.stop(kill=True)
            raise _WorkerDied from None
        self.index = index

    def reply(self) -> tuple[bool, Any]:
        """`(True, result)` or `(False, exception)` for the item; `_WorkerDied` if it died."""
        self.index = None
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.stop(kill=True)
            raise _WorkerDied from None
        except Exception as problem:  # a reply that cannot be unpickled here
            return False, problem

    def stop(self, kill: bool) -> None:
        """End the process: politely when idle, by force when `kill` (it may be mid-item)."""
        if not kill and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                kill = True
        if kill:
            self.process.kill()
        self.process.join(_JOIN_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _finished(busy: list[_Worker]) -> list[_Worker]:
    """Block until some busy workers replied or died; those workers."""
    ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
    return [w for w in busy if w.conn in ready or w.process.sentinel in ready]


class ProcessExecutor(Executor):
    """Maps over items with `workers` spawned processes (default: one per CPU core).

    Workers start on the first `map` and are reused until `close()`. Not for concurrent use
    from several threads. As with any spawn pool, a script using it needs the usual
    `if __name__ == "__main__":` guard, because workers re-import the main module.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise EvoloraError(f"workers must be a positive integer, got {workers!r}.")
        self.workers = workers or os.cpu_count() or 1
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []

    def map(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
        """`[fn(item) for item in items]` across the workers, results in input order."""
        items = list(items)
        results: list[Any] = [None] * len(items)
        waiting = deque(range(len(items)))
        deaths = [0] * len(items)
        busy: list[_Worker] = []
        try:
            while waiting or busy:
                while waiting and len(busy) < self.workers:
                    index = waiting.popleft()
                    worker = self._take_worker()
                    try:
                        worker.submit(fn, items[index], index)
                    except _WorkerDied:  # counted, so a worker that dies at start cannot loop
                        self._record_death(index, items[index], deaths)
                        waiting.appendleft(index)
                        continue
                    except Exception as problem:  # fn or the item cannot be pickled
                        self._idle.append(worker)
                        raise ExecutionError(
                            index, items[index], describe_exception(problem)
                        ) from problem
                    busy.append(worker)
                for worker in _finished(busy):
                    busy.remove(worker)
                    index = worker.index
                    try:
                        succeeded, value = worker.reply()
                    except _WorkerDied:
                        self._record_death(index, items[index], deaths)
                        waiting.appendleft(index)
                        continue
                    self._idle.append(worker)
                    if not succeeded:
                        raise ExecutionError(
                            index, items[index], describe_exception(value)
                        ) from value
                    results[index] = value
        finally:
            for worker in busy:  # abandoned mid-item by an error or an interrupt
                worker.stop(kill=True)
        return results

    def _take_worker(self) -> _Worker:
        """An idle worker that is still alive, or a new one."""
        while self._idle:
            worker = self._idle.pop()
            if worker.process.is_alive():
                return worker
            worker.stop(kill=True)
        return _Worker(self._context)

    @staticmethod
    def _record_death(index: int, item: Any, deaths: list[int]) -> None:
        """Count a worker death on `index`; the second one is the item's own fault."""
        deaths[index] += 1
        if deaths[index] == 2:
            raise ExecutionError(
                index,
                item,
                "its worker process died twice (killed or exited without returning a result)",
            )

    def close(self) -> None:
        """Stop the worker processes."""
        while self._idle:
            self._idle.pop().stop(kill=False)
