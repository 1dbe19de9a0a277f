"""Evaluating trials asynchronously through `evolora.execution`: up to `workers` trials run at
once and each result comes back as soon as it is ready, so a slow trial never stalls the rest.
A raising objective, a NaN or a worker that dies twice becomes a failed trial with its error,
never a stopped search.

With one worker the trials run one after another in the calling process (or in the chosen
executor), so a run is reproducible from its seed. With more, `local` runs them in threads of
this process (for objectives that release the GIL, as torch and I/O do), `process` gives each
thread a worker process of its own, and `ray` sends each trial to a Ray cluster as a task that
Ray retries once when its worker dies.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from evolora.execution.base import ExecutionError, Executor, describe_exception

Outcome = tuple[float | list[float] | None, str | None]


def _call(job: tuple[Callable[..., float], dict[str, Any], float | None]) -> Outcome:
    """Run one objective call; (value, None) or (None, "Error: message")."""
    objective, params, budget = job
    try:
        value = objective(params) if budget is None else objective(params, budget)
        value = [float(v) for v in value] if isinstance(value, Sequence) else float(value)
    except Exception as problem:  # a failing trial is data, not a crash
        return None, describe_exception(problem)
    if not all(map(math.isfinite, value if isinstance(value, list) else [value])):
        return None, f"objective returned {value}"
    return value, None


def _slots(executor: str | None, workers: int) -> list[Executor | None]:
    """One executor per concurrent trial (None: call in the evaluating thread)."""
    if executor in (None, "local"):
        return [None] * workers
    from evolora.execution import get_executor

    if executor == "process":  # a ProcessExecutor serves one caller at a time
        return [get_executor("process", workers=1) for _ in range(workers)]
    return [get_executor(executor, num_cpus=workers)] * workers  # Ray is thread-safe


class Evaluator:
    """Runs trials of `objective(params)` (or `objective(params, budget)`) and hands back each
    (trial, value, error) when it finishes."""

    def __init__(
        self, objective: Callable[..., float], executor: str | None = None, workers: int = 1
    ) -> None:
        self.objective, self.workers = objective, workers
        self._slots = _slots(executor, workers)
        self._free: queue.SimpleQueue[Executor | None] = queue.SimpleQueue()
        for slot in self._slots:
            self._free.put(slot)
        self._threads = ThreadPoolExecutor(workers) if workers > 1 else None
        self._running: dict[Future, Any] = {}
        self._queued: list[Any] = []

    @property
    def running(self) -> int:
        """Trials submitted and not yet handed back."""
        return len(self._running) + len(self._queued)

    def submit(self, trial: Any) -> None:
        """Start evaluating `trial` (its `params` and `budget`)."""
        if self._threads is None:
            self._queued.append(trial)
            return
        self._running[self._threads.submit(self._evaluate, trial)] = trial

    def results(self) -> list[tuple[Any, float | None, str | None]]:
        """Block until at least one trial finished; every finished one, by trial number."""
        if self._threads is None:
            trial = self._queued.pop(0)
            return [(trial, *self._evaluate(trial))]
        done, _ = wait(self._running, return_when=FIRST_COMPLETED)
        finished = sorted(((self._running.pop(f), f.result()) for f in done), key=_number)
        return [(trial, *outcome) for trial, outcome in finished]

    def _evaluate(self, trial: Any) -> Outcome:
        slot = self._free.get()
        job = (self.objective, trial.params, trial.budget)
        try:
            return _call(job) if slot is None else slot.map(_call, [job])[0]
        except ExecutionError as problem:  # e.g. its worker died twice: the trial failed
            return None, str(problem)
        finally:
            self._free.put(slot)

    def close(self) -> None:
        """Wait for running trials, then release threads and executors."""
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
        for slot in dict.fromkeys(self._slots):
            if slot is not None:
                slot.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _number(pair: tuple[Any, Outcome]) -> int:
    return pair[0].number
