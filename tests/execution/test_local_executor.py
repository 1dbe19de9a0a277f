"""LocalExecutor and choosing executors by name."""

from __future__ import annotations

import sys

import pytest

from evolora.errors import EvoloraError
from evolora.execution import ExecutionError, Executor, get_executor
from evolora.execution.base import describe_item
from evolora.execution.local import LocalExecutor


def test_local_maps_in_order():
    with get_executor("local") as executor:
        assert isinstance(executor, LocalExecutor)
        assert executor.map(lambda n: n * n, range(5)) == [0, 1, 4, 9, 16]
        assert executor.map(str.upper, iter(["a", "b"])) == ["A", "B"]


def test_failing_item_names_index_and_truncated_repr():
    long_item = "x" * 500

    def fail_on_long(text: str) -> int:
        if len(text) > 10:
            raise KeyError("too long")
        return len(text)

    with pytest.raises(ExecutionError) as caught:
        LocalExecutor().map(fail_on_long, ["ab", "cde", long_item])
    problem = caught.value
    assert isinstance(problem, EvoloraError)
    assert (problem.index, problem.item) == (2, long_item)
    assert str(problem) == f"Item 2 ({describe_item(long_item)}) failed: KeyError: 'too long'"
    assert len(describe_item(long_item)) == 80
    assert isinstance(problem.__cause__, KeyError)


def test_unknown_executor_and_option_are_one_sentence_errors():
    with pytest.raises(
        EvoloraError, match=r"^Unknown executor 'dask'; choose one of: local, process, ray\.$"
    ):
        get_executor("dask")
    with pytest.raises(EvoloraError, match=r"^Executor 'local' does not take option\(s\) workers"):
        get_executor("local", workers=2)


def test_ray_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(EvoloraError, match=r"needs Ray, which is not installed.*evolora\[ray\]"):
        get_executor("ray")


def test_every_executor_is_an_executor():
    from evolora.execution.process import ProcessExecutor
    from evolora.execution.ray_executor import RayExecutor

    for executor_class in (LocalExecutor, ProcessExecutor, RayExecutor):
        assert issubclass(executor_class, Executor)
