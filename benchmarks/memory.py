"""Peak memory per step and per process, at several corpus sizes (issue: fast on one machine).

Usage: .venv/bin/python -m benchmarks.memory [--sizes 500 0 0x3]
       (a number of BBC articles, 0 = all 2,225; "0x3" = three editions of the whole corpus,
       6,675 documents: each copy starts with its own "Edition k." line, so it is a document of
       its own with the same sentences)

For each size, a `docthemes run` on a fresh output dir and DAGSTER_HOME is sampled every 0.05 s:
the resident memory of the run's process and of its child processes (Dagster's
log tails), each attributed to the Dagster step running at that moment. The embedding cache is carried from one size to the next,
so a larger size embeds only the texts the smaller one did not have (memory, not speed, is
measured here; benchmarks.performance times cold runs). Memory that grows with the corpus shows
as a slope between sizes: the script prints MB per 10,000 claims for each process and step.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import bbc_files, cli_run, copy_articles


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def sampled_run(raw: Path, out: Path, home: Path) -> tuple[float, list[tuple[float, float, float]]]:
    """Run `docthemes run`; return its wall time and samples (epoch time, run MB, helper MB)."""
    samples: list[tuple[float, float, float]] = []

    def sample(pid: int) -> None:
        helper = sum(rss_mb(c) for c in children(pid))
        samples.append((time.time(), rss_mb(pid), helper))

    elapsed, _ = cli_run(raw, out, home, sample, interval=0.05)
    return elapsed, samples


def step_windows(home: Path) -> list[tuple[str, float, float]]:
    """(step, start, end) epoch times of the latest run recorded in ``home``."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        return [
            (s.step_key, s.start_time or 0.0, s.end_time or 0.0)
            for s in instance.get_run_step_stats(run.run_id)
            if s.step_key
        ]


def claims_count(out: Path) -> int:
    """Rows of the published claims table."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(out / "claims.parquet").metadata.num_rows)


def editions(files: list[Path], raw: Path, copies: int) -> None:
    """``copies`` editions of the articles, each a distinct document with the same sentences."""
    if copies == 1:
        copy_articles(files, raw)
        return
    for k in range(copies):
        for f in files:
            dest = raw / f"edition-{k}" / f.parent.name / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f"Edition {k}.\n\n".encode() + f.read_bytes())


def measure(
    files: list[Path], copies: int, tmp: Path, cache: Path
) -> tuple[int, float, dict[str, tuple[float, float]]]:
    """Claims, wall time and, per phase, the peak MB of (run process, its child processes)."""
    raw, out, home = tmp / "raw", tmp / "out", tmp / "home"
    editions(files, raw, copies)
    if cache.exists():
        shutil.copytree(cache, out / "_cache" / "embeddings")
    elapsed, samples = sampled_run(raw, out, home)
    windows = step_windows(home)
    peaks: dict[str, tuple[float, float]] = {}
    for t, run_mb, helper_mb in samples:
        phase = next((k for k, a, b in windows if a <= t <= b), "start-up / other")
        old = peaks.get(phase, (0.0, 0.0))
        peaks[phase] = (max(old[0], run_mb), max(old[1], helper_mb))
    whole = (max(s[1] for s in samples), max(s[2] for s in samples))
    peaks["whole run"] = whole
    peaks["whole run, summed"] = (max(s[1] + s[2] for s in samples), 0.0)
    n_claims = claims_count(out)
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(out / "_cache" / "embeddings", cache)
    shutil.rmtree(tmp)
    return n_claims, elapsed, peaks


def main() -> None:
    """Measure each size and print peaks and slopes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["500", "0", "0x3"])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as keep:
        cache = Path(keep) / "embeddings"
        for size in args.sizes:
            n, _, k = size.partition("x")
            files, copies = bbc_files(int(n) or None), int(k or 1)
            with tempfile.TemporaryDirectory() as tmpdir:
                n_claims, elapsed, peaks = measure(files, copies, Path(tmpdir) / "m", cache)
            results.append((len(files) * copies, n_claims, elapsed, peaks))
            print(f"\n{len(files) * copies} documents, {n_claims} claims, run {elapsed:.1f} s")
            print(f"  {'phase':<40} {'run MB':>8} {'children MB':>12}")
            for phase, (run_mb, helper_mb) in peaks.items():
                print(f"  {phase:<40} {run_mb:8.0f} {helper_mb:12.0f}", flush=True)
    for (_, c0, _, p0), (_, c1, _, p1) in zip(results, results[1:], strict=False):
        per = 10_000 / (c1 - c0) if c1 != c0 else 0.0
        print(f"\nslope between {c0} and {c1} claims, MB per 10,000 claims:")
        for phase in p1:
            if phase in p0:
                d_run = (p1[phase][0] - p0[phase][0]) * per
                d_helper = (p1[phase][1] - p0[phase][1]) * per
                print(f"  {phase:<40} {d_run:8.1f} {d_helper:12.1f}")


if __name__ == "__main__":
    main()
