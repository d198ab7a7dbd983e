"""The live progress display of ``docthemes run`` on a terminal (rich progress bars).

Stages report through :class:`pipeline.progress.Progress`, whose updates arrive here as records
on the ``docthemes.progress`` logger. Off a terminal (cron, CI) nothing is attached and the run
prints only its plain, throttled log lines.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pipeline.progress import LIVE_LOGGER, ProgressEvent

__all__ = ["ProgressDisplay", "live_progress"]


class ProgressDisplay(logging.Handler):
    """A logging handler that keeps one progress bar per stage and unit."""

    def __init__(self, bars: Progress) -> None:
        """Draw on ``bars``."""
        super().__init__(logging.DEBUG)
        self.bars = bars
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Move the bar of the record's stage."""
        event = getattr(record, "progress", None)
        if not isinstance(event, ProgressEvent):
            return
        key = (event.stage, event.unit)
        if key not in self.tasks:
            name = f"{event.stage}: {event.unit}"
            self.tasks[key] = self.bars.add_task(name, total=event.total)
        task = self.tasks[key]
        total = event.total if event.total is not None else (event.done if event.finished else None)
        self.bars.update(task, completed=event.done, total=total)


@contextlib.contextmanager
def live_progress(stream: IO[str]) -> Iterator[ProgressDisplay | None]:
    """Show live bars while the block runs when ``stream`` is a terminal; else do nothing."""
    if not stream.isatty():
        yield None
        return
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=False,
    )
    display = ProgressDisplay(bars)
    logger = logging.getLogger(LIVE_LOGGER)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(display)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the updates are for the bars, not for other handlers
    try:
        with bars:
            yield display
    finally:
        logger.removeHandler(display)
        logger.setLevel(level)
        logger.propagate = propagate
