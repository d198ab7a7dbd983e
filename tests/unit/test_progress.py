"""Progress of long stages: throttled plain lines, live records, and the terminal display."""

import io
import logging

from rich.console import Console
from rich.progress import Progress as Bars

from assets.live import ProgressDisplay, live_progress
from pipeline.corpus import write_corpus
from pipeline.ingest import IngestConfig
from pipeline.progress import LIVE_LOGGER, Progress, ProgressEvent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_throttled_and_carry_rate_and_eta():
    clock, lines = Clock(), []
    progress = Progress("embedding", "texts embedded", lines.append, every_s=10, clock=clock)
    progress(100, 1000)
    clock.now += 5
    progress(500, 1000)  # 5 s after the start: no line yet
    assert lines == []
    clock.now += 5
    progress(1000, 4000)
    assert lines == ["embedding: 1,000 of 4,000 texts embedded (100/s, ETA 30 s)"]
    clock.now += 2
    progress(1200)  # the total, once known, stays
    progress.finish()  # always written, with the mean rate and the time
    assert lines[1:] == ["embedding: 1,200 of 4,000 texts embedded (100/s, 12.0 s)"]


def test_excluded_time_is_left_out_of_the_rate():
    clock, lines = Clock(), []
    progress = Progress("embedding", "texts embedded", lines.append, clock=clock)
    clock.now += 14
    progress.exclude(4)  # a model load
    progress(500, 1500)
    progress.finish()
    assert lines == [
        "embedding: 500 of 1,500 texts embedded (50/s, ETA 20 s)",  # 14 s since the last line
        "embedding: 500 of 1,500 texts embedded (50/s, 10.0 s)",
    ]


def test_live_records_only_when_a_display_listens(caplog):
    progress = Progress("corpus", "files scanned", lambda _: None)
    with caplog.at_level(logging.WARNING, logger=LIVE_LOGGER):
        progress(1, 2)
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger=LIVE_LOGGER):
        progress(2, 2)
        progress.finish()
    events = [r.progress for r in caplog.records]
    assert events == [
        ProgressEvent("corpus", "files scanned", 2, 2, False),
        ProgressEvent("corpus", "files scanned", 2, 2, True),
    ]


def test_display_keeps_one_bar_per_stage():
    bars = Bars(console=Console(file=io.StringIO()))
    display = ProgressDisplay(bars)
    for event in (
        ProgressEvent("corpus", "files scanned", 1, 3, False),
        ProgressEvent("corpus", "files scanned", 3, 3, True),
        ProgressEvent("corpus", "documents split", 2, None, False),
        ProgressEvent("corpus", "documents split", 2, None, True),
    ):
        record = logging.LogRecord(LIVE_LOGGER, logging.DEBUG, "", 0, "%s", (event,), None)
        record.progress = event
        display.emit(record)
    tasks = {t.description: (t.completed, t.total) for t in bars.tasks}
    # A stage without a known total gets one at its end: its bar shows complete.
    assert tasks == {"corpus: files scanned": (3, 3), "corpus: documents split": (2, 2)}


def test_no_display_off_a_terminal():
    logger = logging.getLogger(LIVE_LOGGER)
    before = list(logger.handlers)
    with live_progress(io.StringIO()) as display:
        assert display is None and logger.handlers == before
        assert not logger.isEnabledFor(logging.DEBUG)


def test_corpus_reports_files_scanned_and_documents_split(seed_dir, tmp_path):
    lines: list[str] = []
    (seed_dir / "notes.md").write_text("not an article")  # a reject is a file scanned too
    paths = {
        n: tmp_path / f"{n}.parquet"
        for n in ("documents", "segments", "claims", "rejected_files", "duplicates")
    }
    write_corpus(
        seed_dir,
        IngestConfig(),
        paths,
        max_sentence_chars=1000,
        scan_progress=Progress("corpus", "files scanned", lines.append),
        split_progress=Progress("corpus", "documents split", lines.append),
    )
    assert [line.split(" (")[0] for line in lines] == [
        "corpus: 3 of 3 files scanned",
        "corpus: 2 of 2 documents split",
    ]


def test_no_throttled_line_at_the_total_only_the_final_one():
    clock, lines = Clock(), []
    progress = Progress("themes", "claims fitted", lines.append, every_s=10, clock=clock)
    progress(0, 40)
    clock.now += 20
    progress(40, 40)  # done: `finish` says so, once
    progress.finish()
    assert lines == ["themes: 40 of 40 claims fitted (2/s, 20.0 s)"]
