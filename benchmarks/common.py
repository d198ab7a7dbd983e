"""Helpers shared by the benchmark scripts."""

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BBC = Path(os.environ.get("DOCTHEMES_BBC_DIR", ROOT.parent / "shared" / "corpora" / "bbc"))


def bbc_dir() -> Path:
    """The BBC corpus (never copied into the repository)."""
    if not (BBC / "business").is_dir():
        raise SystemExit(f"BBC corpus not found at {BBC}; set DOCTHEMES_BBC_DIR")
    return BBC


def bbc_files(limit: int | None = None) -> list[Path]:
    """BBC article paths in sorted order; ``limit`` takes an even spread over categories."""
    files = sorted(bbc_dir().glob("*/*.txt"))
    if limit is None or limit >= len(files):
        return files
    step = len(files) / limit
    return [files[int(i * step)] for i in range(limit)]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(label: str, out: dict[str, float]) -> Iterator[None]:
    """Record the wall time of a block under ``label``."""
    start = time.perf_counter()
    yield
    out[label] = time.perf_counter() - start
