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


def copy_articles(files: list[Path], raw: Path) -> None:
    """Copy BBC articles into a raw dir as ``<category>/<name>``."""
    import shutil

    for f in files:
        dest = raw / f.parent.name / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)


def cli_run(raw: Path, out: Path, home: Path) -> tuple[float, str]:
    """Run ``docthemes run`` in a fresh process, as `make run` does; return (seconds, stdout)."""
    import subprocess
    import sys

    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DOCTHEMES_RAW_DIR": str(raw),
        "DOCTHEMES_PROCESSED_DIR": str(out),
        "DAGSTER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
    }
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "assets.cli", "run", "--log-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout
