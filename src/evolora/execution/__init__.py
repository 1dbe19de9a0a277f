"""Executors: one way to spread `fn(item)` over this process, worker processes or a Ray cluster.

with get_executor("process", workers=2) as executor:
    scores = executor.map(evaluate, candidates)
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Literal

from evolora.errors import EvoloraError
from evolora.execution.base import ExecutionError, Executor

ExecutorName = Literal["local", "process", "ray"]

_EXECUTORS = {
    "local": ("evolora.execution.local", "LocalExecutor"),
    "process": ("evolora.execution.process", "ProcessExecutor"),
    "ray": ("evolora.execution.ray_executor", "RayExecutor"),
}


def get_executor(name: str, **options: Any) -> Executor:
    """The executor called `name` (local, process or ray), built with `options`."""
    if name not in _EXECUTORS:
        raise EvoloraError(f"Unknown executor '{name}'; choose one of: {', '.join(_EXECUTORS)}.")
    module, class_name = _EXECUTORS[name]
    executor_class = getattr(importlib.import_module(module), class_name)
    try:
        inspect.signature(executor_class).bind(**options)
    except TypeError:
        accepted = [p for p in inspect.signature(executor_class).parameters if p != "self"]
        unknown = ", ".join(sorted(set(options) - set(accepted))) or "(positional)"
        raise EvoloraError(
            f"Executor '{name}' does not take option(s) {unknown}; it accepts: "
            f"{', '.join(accepted) or 'no options'}."
        ) from None
    return executor_class(**options)


__all__ = ["ExecutionError", "Executor", "ExecutorName", "get_executor"]
