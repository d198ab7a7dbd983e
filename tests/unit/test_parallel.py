"""Workers.map: order kept, bounded in flight, failures cancel the rest, no task when idle."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.parallel import Workers


def slow_square(x: int) -> int:
    time.sleep(0.01 * (5 - x % 5))  # later items finish first
    return x * x


def test_results_come_in_submission_order_whatever_finishes_first():
    with ThreadPoolExecutor(4) as pool:
        got = list(Workers(pool, in_flight=4).map(slow_square, range(12), lambda i: i))
    assert got == [(i, i * i) for i in range(12)]
    assert list(Workers().map(slow_square, range(12), lambda i: i)) == got


def test_items_with_nothing_to_do_cost_no_task():
    calls: list[int] = []
    with ThreadPoolExecutor(2) as pool:
        got = list(
            Workers(pool).map(
                lambda x: calls.append(x) or x, range(6), lambda i: i if i % 2 else None
            )
        )
    assert got == [(0, None), (1, 1), (2, None), (3, 3), (4, None), (5, 5)]
    assert sorted(calls) == [1, 3, 5]


def test_no_more_than_in_flight_tasks_are_submitted_ahead():
    running, peak, lock = 0, 0, threading.Lock()

    def task(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return x

    submitted: list[int] = []

    def arg(i: int) -> int:
        submitted.append(i)
        return i

    with ThreadPoolExecutor(8) as pool:
        for item, _ in Workers(pool, in_flight=2).map(task, range(10), arg):
            # the item being consumed plus at most in_flight submitted ahead of it
            assert len(submitted) <= item + 1 + 2
    assert peak <= 3


def test_a_failed_task_raises_and_cancels_the_pending_ones():
    started: list[int] = []

    def task(x: int) -> int:
        started.append(x)
        if x == 1:
            raise RuntimeError("worker failed")
        time.sleep(0.05)
        return x

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RuntimeError, match="worker failed"):
            list(Workers(pool, in_flight=3).map(task, range(20), lambda i: i))
    assert len(started) < 20


def test_in_flight_must_be_positive():
    with pytest.raises(ValueError, match="in_flight"):
        Workers(in_flight=0)
