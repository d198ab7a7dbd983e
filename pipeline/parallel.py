"""Data-parallel tasks: run here, or on the workers of any ``concurrent.futures`` executor.

The pipeline never starts processes or connects to clusters itself: the caller passes an
executor (the cluster profile passes a Dask client's, ``distributed.Client.get_executor``), and
the stages submit pure, picklable functions to it (splitting a batch of documents, embedding a
chunk of texts). Results come back in submission order, so every table is the same whichever
executor ran the tasks, and only a bounded number of tasks is in flight, so the driver never
holds more than a few batches of inputs and results.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")

__all__ = ["Workers"]


@dataclass(frozen=True, slots=True)
class Workers:
    """Where a stage's tasks run.

    Args:
        executor: ``None`` runs each task in this process when its result is needed (the local
            profile: no pickling, no task overhead). Otherwise tasks are submitted to it.
        in_flight: Tasks submitted ahead of the one whose result is awaited (twice the
            cluster's worker threads keeps every worker busy while results are consumed).
    """

    executor: Executor | None = None
    in_flight: int = 4

    def __post_init__(self) -> None:
        """Refuse an empty pipeline of tasks."""
        if self.in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {self.in_flight}")

    @property
    def remote(self) -> bool:
        """Whether tasks run on an executor's workers (their functions must be picklable)."""
        return self.executor is not None

    def map(
        self,
        fn: Callable[[A], R],
        items: Iterable[T],
        arg: Callable[[T], A | None],
    ) -> Iterator[tuple[T, R | None]]:
        """``(item, fn(arg(item)))`` for each item, in order; ``None`` where ``arg`` gives None.

        ``arg`` picks what a task needs from an item (so the driver keeps the rest); an item
        with nothing to do (``arg`` returns None) costs no task.

        Raises:
            Exception: The first failed task's exception, after the tasks still pending are
                cancelled.
        """
        if self.executor is None:
            for item in items:
                value = arg(item)
                yield item, (None if value is None else fn(value))
            return
        pending: deque[tuple[T, Future[R] | None]] = deque()
        try:
            for item in items:
                value = arg(item)
                pending.append((item, None if value is None else self.executor.submit(fn, value)))
                while len(pending) > self.in_flight:
                    done, future = pending.popleft()
                    yield done, (None if future is None else future.result())
            while pending:
                done, future = pending.popleft()
                yield done, (None if future is None else future.result())
        finally:
            for _, future in pending:
                if future is not None:
                    future.cancel()
