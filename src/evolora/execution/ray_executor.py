"""Run items as Ray tasks, on a cluster at an address or on a local cluster started here.

Ray is evolora's distributed engine: scaling to many machines means pointing `address` at a Ray
cluster (`ray start --head` on one machine, `ray start --address=...` on the others). A task whose
worker dies is retried once by Ray itself (`max_retries=1`); an exception raised by `fn` is not
retried.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from evolora.errors import EvoloraError
from evolora.execution.base import ExecutionError, Executor, Item, Result, describe_exception


def _apply(fn: Callable[[Any], Any], item: Any) -> Any:
    return fn(item)


def _import_ray() -> Any:
    # Nothing in evolora reaches the network: switch off Ray's usage reporting before it loads.
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    try:
        import ray
    except ImportError as problem:
        raise EvoloraError(
            "The ray executor needs Ray, which is not installed; install it with "
            "`pip install 'evolora[ray]'` or choose executor 'local' or 'process'."
        ) from problem
    return ray


class RayExecutor(Executor):
    """Maps over items as Ray tasks (one CPU each).

    With `address` (e.g. "auto" or "ray://host:10001") it joins that cluster; otherwise it starts
    a local one with `num_cpus` CPUs. If Ray is already initialised in this process, it uses that
    and leaves it running on `close()`; a cluster it started itself is shut down by `close()`.
    """

    def __init__(
        self, address: str | None = None, num_cpus: int = 2, include_dashboard: bool = False
    ) -> None:
        if num_cpus < 1:
            raise EvoloraError(f"num_cpus must be at least 1, got {num_cpus}.")
        self._ray = ray = _import_ray()
        self._owns_ray = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"logging_level": logging.WARNING}
            if address is None:
                # Same machine, same import path: functions from scripts and tests resolve there.
                python_path = os.pathsep.join(path for path in sys.path if path)
                options.update(
                    num_cpus=num_cpus,
                    include_dashboard=include_dashboard,
                    runtime_env={"env_vars": {"PYTHONPATH": python_path}},
                )
            try:
                ray.init(address=address, **options)
            except ConnectionError as problem:
                raise EvoloraError(
                    f"Cannot connect to the Ray cluster at '{address}' ({problem}); start it with "
                    "`ray start --head` or leave the address empty for a local cluster."
                ) from problem
            self._owns_ray = True
        self._task = ray.remote(max_retries=1, retry_exceptions=False)(_apply)

    @property
    def ray(self) -> Any:
        """The initialised `ray` module, for work that needs actors rather than tasks."""
        return self._ray

    def map(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
        """`[fn(item) for item in items]` as Ray tasks, results in input order."""
        ray = self._ray
        items = list(items)
        fn_ref = ray.put(fn)
        refs = [self._task.remote(fn_ref, item) for item in items]
        results = []
        for index, ref in enumerate(refs):
            try:
                results.append(ray.get(ref))
            except ray.exceptions.RayTaskError as problem:
                self._cancel(refs[index + 1 :])
                cause = problem.cause if isinstance(problem.cause, BaseException) else problem
                raise ExecutionError(index, items[index], describe_exception(cause)) from problem
            except ray.exceptions.RayError as problem:
                self._cancel(refs[index + 1 :])
                reason = "its Ray worker died twice or the task was lost"
                raise ExecutionError(
                    index, items[index], f"{reason} ({type(problem).__name__})"
                ) from problem
        return results

    def close(self) -> None:
        """Shut down the local Ray cluster if this executor started it."""
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_ray = False

    def _cancel(self, refs: list[Any]) -> None:
        for ref in refs:
            # Best effort: a finished or lost task cannot be cancelled.
            with contextlib.suppress(Exception):
                self._ray.cancel(ref)
