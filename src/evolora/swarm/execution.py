"""Evaluating trials through `evolora.execution`: a raising objective or a NaN becomes a failed
trial with its error, never a stopped search."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from evolora.execution.base import describe_exception


def _call(job: tuple[Callable[..., float], dict[str, Any], float | None]) -> tuple[Any, Any]:
    """Run one objective call; (value, None) or (None, "Error: message")."""
    objective, params, budget = job
    try:
        value = objective(params) if budget is None else objective(params, budget)
        value = float(value)
    except Exception as problem:  # a failing trial is data, not a crash
        return None, describe_exception(problem)
    if not math.isfinite(value):
        return None, f"objective returned {value}"
    return value, None


def evaluate_batch(
    objective: Callable[..., float], trials: Sequence[Any], executor: Any = None
) -> list[tuple[float | None, str | None]]:
    """(value, error) for each trial, evaluated in this process or through `executor.map`."""
    jobs = [(objective, trial.params, trial.budget) for trial in trials]
    if executor is None:
        return [_call(job) for job in jobs]
    return executor.map(_call, jobs)
