"""RayExecutor on a local 2-CPU cluster (started once for the module) matches LocalExecutor."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("ray")

from evolora.execution import ExecutionError, get_executor
from evolora.execution.local import LocalExecutor
from evolora.execution.ray_executor import RayExecutor

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def digit_sum_of_square(n: int) -> int:
    """Sum of the decimal digits of n*n (known: 12 -> 144 -> 9, 99 -> 9801 -> 18)."""
    return sum(int(digit) for digit in str(n * n))


def fail_on_negative(n: int) -> int:
    if n < 0:
        raise ValueError(f"negative input {n}")
    return n


def die_once_on_seven(job: tuple[str, int]) -> int:
    """Kill the worker the first time item 7 runs (a marker file remembers), then succeed."""
    folder, n = job
    marker = Path(folder) / "seen-7"
    if n == 7 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return n + 100


def always_die_on_three(n: int) -> int:
    if n == 3:
        os._exit(3)
    return n


@pytest.fixture(scope="module")
def executor():
    os.environ["RAY_DISABLE_USAGE_STATS"] = "1"
    ray_executor = get_executor("ray", num_cpus=2)
    yield ray_executor
    ray_executor.close()


def test_same_results_as_local(executor):
    assert isinstance(executor, RayExecutor)
    items = list(range(120))
    expected = LocalExecutor().map(digit_sum_of_square, items)
    assert executor.map(digit_sum_of_square, items) == expected
    assert expected[12] == 9 and expected[99] == 18
    assert executor.map(digit_sum_of_square, []) == []


def test_failing_item_error_names_index_and_item(executor):
    with pytest.raises(ExecutionError) as caught:
        executor.map(fail_on_negative, [3, 2, 1, 0, -1, 5])
    assert caught.value.index == 4
    assert str(caught.value).startswith("Item 4 (-1) failed: ValueError: negative input -1")


def test_worker_killed_once_is_retried(executor, tmp_path):
    jobs = [(str(tmp_path), n) for n in range(10)]
    assert executor.map(die_once_on_seven, jobs) == [n + 100 for n in range(10)]
    assert (tmp_path / "seen-7").exists()


def test_worker_dying_twice_is_an_error_naming_the_item(executor):
    with pytest.raises(ExecutionError, match=r"^Item 3 \(3\) failed: its Ray worker died"):
        executor.map(always_die_on_three, range(5))
