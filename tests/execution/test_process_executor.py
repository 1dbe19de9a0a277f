"""ProcessExecutor: matches LocalExecutor, errors name the item, dead workers are retried once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from evolora.errors import EvoloraError
from evolora.execution import ExecutionError, get_executor
from evolora.execution.local import LocalExecutor
from evolora.execution.process import ProcessExecutor

pytestmark = pytest.mark.slow  # spawning worker processes takes a few seconds


def collatz_steps(n: int) -> int:
    """Steps for n to reach 1 (known values: 27 -> 111, 97 -> 118)."""
    steps = 0
    while n != 1:
        n = 3 * n + 1 if n % 2 else n // 2
        steps += 1
    return steps


def fail_on_seven(n: int) -> int:
    if n == 7:
        raise ValueError(f"seven is not allowed ({n})")
    return n


def die_once_per_item(job: tuple[str, int]) -> int:
    """Kill the worker the first time an item is seen (a marker file remembers), then succeed."""
    folder, n = job
    marker = Path(folder) / f"seen-{n}"
    if n % 3 == 0 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return n * n


def unpicklable_result(n: int):
    return (lambda: n) if n == 2 else n


def refuse_to_rebuild():
    raise ValueError("cannot be rebuilt in a worker")


class BuiltOnlyHere:
    """Pickles fine, but unpickling it (in the worker) raises."""

    def __reduce__(self):
        return (refuse_to_rebuild, ())

    def __repr__(self) -> str:
        return "BuiltOnlyHere()"


def worker_pid(_: int) -> int:
    return os.getpid()


def always_die_on_five(n: int) -> int:
    if n == 5:
        os._exit(3)
    return n


@pytest.fixture(scope="module")
def executor():
    with ProcessExecutor(workers=2) as pool:
        yield pool


def test_same_results_as_local_in_input_order(executor):
    items = [*range(1, 60), 27, 97]
    expected = LocalExecutor().map(collatz_steps, items)
    assert executor.map(collatz_steps, items) == expected
    assert expected[-2:] == [111, 118]
    assert executor.map(collatz_steps, []) == []


def test_failing_item_error_names_index_and_item(executor):
    with pytest.raises(ExecutionError) as caught:
        executor.map(fail_on_seven, [1, 2, 3, 4, 5, 6, 7, 8])
    assert caught.value.index == 6
    assert caught.value.item == 7
    message = str(caught.value)
    assert message.startswith("Item 6 (7) failed: ValueError: seven is not allowed (7)")
    assert "\n" not in message
    # the pool still works after a failure
    assert executor.map(fail_on_seven, [1, 2]) == [1, 2]


def test_worker_killed_once_is_retried(executor, tmp_path):
    jobs = [(str(tmp_path), n) for n in range(10)]
    assert executor.map(die_once_per_item, jobs) == [n * n for n in range(10)]
    # every multiple of 3 really did kill a worker once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seen-0", "seen-3", "seen-6", "seen-9"]


def test_worker_dying_twice_is_an_error_naming_the_item(executor):
    with pytest.raises(
        ExecutionError, match=r"^Item 5 \(5\) failed: its worker process died twice"
    ):
        executor.map(always_die_on_five, range(8))
    assert executor.map(always_die_on_five, [1, 2, 3]) == [1, 2, 3]


def test_unpicklable_function_or_result_is_an_error_naming_the_item(executor):
    with pytest.raises(ExecutionError, match=r"^Item 0 \(1\) failed: .*lambda"):
        executor.map(lambda n: n, [1, 2])
    with pytest.raises(ExecutionError, match=r"^Item 1 \(2\) failed: .*lambda"):
        executor.map(unpicklable_result, [1, 2, 3])
    assert executor.map(unpicklable_result, [1, 3]) == [1, 3]


def test_an_item_that_cannot_be_unpickled_in_the_worker_is_an_error_naming_it(executor):
    with pytest.raises(ExecutionError, match=r"^Item 1 \(BuiltOnlyHere\(\)\) failed: .*rebuilt"):
        executor.map(collatz_steps, [3, BuiltOnlyHere()])
    assert executor.map(collatz_steps, [27]) == [111]


def test_a_worker_killed_while_idle_is_replaced_and_close_ends_them_all():
    with ProcessExecutor(workers=2) as pool:
        first = set(pool.map(worker_pid, range(4)))
        victim = first.pop()
        os.kill(victim, signal.SIGKILL)
        second = set(pool.map(worker_pid, range(4)))
        assert victim not in second
    for pid in first | second:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_get_executor_by_name_and_bad_options():
    with get_executor("process", workers=1) as one:
        assert isinstance(one, ProcessExecutor)
        assert one.workers == 1
    with pytest.raises(EvoloraError, match="does not take option"):
        get_executor("process", address="x")
    with pytest.raises(EvoloraError, match="workers must be a positive integer"):
        ProcessExecutor(workers=0)
