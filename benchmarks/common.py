"""Helpers shared by the benchmark scripts."""

import os
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from pipeline.embed import CachedEmbeddings

ROOT = Path(__file__).resolve().parents[1]
BBC = Path(os.environ.get("DOCTHEMES_BBC_DIR", ROOT.parent / "shared" / "corpora" / "bbc"))


class CachedEncoder:
    """The packaged model and the benchmarks' embedding cache (benchmarks/results/cache).

    Texts embedded once are read back on later runs of any benchmark.
    """

    def __init__(self) -> None:
        """Load and verify the model; open the cache under its key."""
        from pipeline.embed import (
            EmbeddingCache,
            load_model,
            model_key,
            resolve_model,
            verify_weights,
        )

        spec = resolve_model()
        self.model = load_model(spec)
        self.cache = EmbeddingCache(
            ROOT / "benchmarks" / "results" / "cache", model_key(spec, verify_weights(spec))
        )

    def cached(self, texts: list[str]) -> "CachedEmbeddings":
        """Vectors of ``texts`` with the cache's hit and miss counts (CachedEmbeddings)."""
        from pipeline.embed import embed_texts, embed_with_cache

        return embed_with_cache(texts, lambda t: embed_texts(self.model, t), self.cache)

    def __call__(self, texts: list[str]) -> "np.ndarray":
        """Unit vectors of ``texts``, ``(len(texts), dim)``."""
        vectors: np.ndarray = self.cached(texts).vectors
        return vectors


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


def cli_run(
    raw: Path | str,
    out: Path | str,
    home: Path,
    sample: Callable[[int], None] | None = None,
    interval: float = 0.1,
) -> tuple[float, str]:
    """Run ``docthemes run`` in a fresh process, as `make run` does; return (seconds, stdout).

    The peak resident memory of the run's process tree (the run and its child processes,
    summed) is kept in ``LAST_PEAK_RSS_MB``; ``sample``, if given, is also called with the
    run's pid every ``interval`` seconds.
    """
    import subprocess
    import sys
    import threading

    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DOCTHEMES_RAW_DIR": str(raw),
        "DOCTHEMES_PROCESSED_DIR": str(out),
        "DAGSTER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assets.cli", "run", "--log-level", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0.0]

    def sampling() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            if sample is not None:
                sample(proc.pid)
            time.sleep(interval)

    sampler = threading.Thread(target=sampling, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    elapsed = time.perf_counter() - start
    sampler.join()
    LAST_PEAK_RSS_MB[0] = peak[0]
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{stdout}\n{stderr[-3000:]}")
    return elapsed, stdout


LAST_PEAK_RSS_MB = [0.0]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def step_times(home: Path) -> tuple[dict[str, float], dict[str, object]]:
    """Seconds per step of the latest run recorded in ``home``, and the embedding metadata."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        steps = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0)
            for s in instance.get_run_step_stats(run.run_id)
            if s.step_key and "schema_matches" not in s.step_key
        }
        event = instance.get_latest_materialization_event(dg.AssetKey("claim_embeddings"))
        mat = event.asset_materialization if event else None
        meta = {k: v.value for k, v in mat.metadata.items()} if mat else {}
    keys = ("model_load_seconds", "embed_seconds", "texts_per_second")
    return steps, {k: meta[k] for k in keys if k in meta}
