"""Progress of long stages: counts with rate and ETA, as plain log lines and as live updates.

A stage reports ``(done, total)`` as often as it likes; :class:`Progress` turns that into a log
line at most every ``every_s`` seconds (and one at the end), which is what a nightly log, cron's
mail and the Dagster run log want, and into a record on the ``docthemes.progress`` logger at
every call, which a terminal display (``docthemes run`` on a terminal) may follow. Nothing
listens on that logger unless a display is attached, so the records cost one level check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LIVE_LOGGER", "Progress", "ProgressEvent", "ProgressFn"]

LIVE_LOGGER = "docthemes.progress"

# ``progress(done, total)``: a stage's count so far, and its total when known.
ProgressFn = Callable[[int, int | None], None]

_live = logging.getLogger(LIVE_LOGGER)


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One update, attached to a ``docthemes.progress`` record as its ``progress`` attribute."""

    stage: str
    unit: str
    done: int
    total: int | None
    finished: bool


class Progress:
    """Throttled progress lines for one stage ("embedding: 1,200 of 40,000 texts ...").

    Args:
        stage: Name of the stage, first word of every line.
        unit: What is counted, plural ("files scanned", "texts embedded").
        log: Where lines go (an asset's ``context.log.info``).
        every_s: Least time between two lines; the last line is always written.
        clock: Seconds, monotonic; tests pass their own.
    """

    def __init__(
        self,
        stage: str,
        unit: str,
        log: Callable[[str], None],
        *,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start the stage's clock."""
        self.stage = stage
        self.unit = unit
        self._log = log
        self._every_s = every_s
        self._clock = clock
        self._start = clock()
        self._last_line = self._start
        self._done = 0
        self._total: int | None = None

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` (a model load, say) out of the rate and the ETA."""
        self._start += seconds

    def __call__(self, done: int, total: int | None = None) -> None:
        """Record the count; write a line when ``every_s`` has passed since the last one."""
        self._done, self._total = done, total if total is not None else self._total
        self._emit_live(finished=False)
        now = self._clock()
        # At its total the stage is about to finish, and `finish` writes the last line.
        if now - self._last_line >= self._every_s and self._done != self._total:
            self._last_line = now
            self._log(self.line(now))

    def finish(self, done: int | None = None) -> None:
        """Write the final line (the stage's count, ``done`` if given, and mean rate)."""
        if done is not None:
            self._done = done
        self._emit_live(finished=True)
        self._log(self.line(self._clock(), finished=True))

    def line(self, now: float, *, finished: bool = False) -> str:
        """The progress line at time ``now``."""
        elapsed = max(now - self._start, 1e-9)
        rate = self._done / elapsed
        count = f"{self._done:,}" if self._total is None else f"{self._done:,} of {self._total:,}"
        text = f"{self.stage}: {count} {self.unit} ({rate:,.0f}/s"
        if finished:
            return text + f", {elapsed:,.1f} s)"
        if self._total is not None and rate > 0:
            text += f", ETA {(self._total - self._done) / rate:,.0f} s"
        return text + ")"

    def _emit_live(self, *, finished: bool) -> None:
        if _live.isEnabledFor(logging.DEBUG):
            event = ProgressEvent(self.stage, self.unit, self._done, self._total, finished)
            _live.debug("%s", event, extra={"progress": event})
