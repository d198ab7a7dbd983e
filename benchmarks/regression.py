"""Same tables before and after a change: run the pipeline on fixed corpora, then compare.

    python -m benchmarks.regression run DIR      # seeds and 500 BBC articles, cold, into DIR
    python -m benchmarks.regression compare A B  # every table of A against B

``run`` writes ``DIR/seeds`` and ``DIR/bbc500`` (each a processed dir and its timings);
``compare`` prints, per table, whether ids and texts are exact and the largest float difference,
and exits 1 when any table differs beyond 1e-5. Run ``run`` on the old commit and on the new
one, on the same machine, back to back.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import LAST_PEAK_RSS_MB, ROOT, bbc_files, cli_run, copy_articles

# Written by the run itself, not derived from the input.
_SKIP_TABLES = {"runs"}
_SKIP_COLUMNS = {"ingested_from"}  # the absolute path of the temporary raw dir
_TOLERANCE = 1e-5


def _corpora(tmp: Path) -> dict[str, Path]:
    seeds = tmp / "raw-seeds"
    shutil.copytree(ROOT / "data" / "raw", seeds)
    bbc = tmp / "raw-bbc500"
    copy_articles(bbc_files(500), bbc)
    return {"seeds": seeds, "bbc500": bbc}


def run(out: Path) -> None:
    """Cold runs on the seeds and on 500 BBC articles, tables kept under ``out``."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, raw in _corpora(tmp).items():
            dest = out / name
            if dest.exists():
                shutil.rmtree(dest)
            seconds, _ = cli_run(raw, dest, tmp / f"home-{name}")
            figures = {"seconds": round(seconds, 1), "peak_rss_mb": round(LAST_PEAK_RSS_MB[0])}
            (out / f"{name}.json").write_text(json.dumps(figures))
            print(f"{name}: {seconds:.1f} s, peak RSS {LAST_PEAK_RSS_MB[0]:.0f} MB")  # noqa: T201


def _max_float_diff(a: pa.ChunkedArray, b: pa.ChunkedArray) -> float:
    if pa.types.is_fixed_size_list(a.type) or pa.types.is_list(a.type):
        a = pa.chunked_array([c.flatten() for c in a.chunks], a.type.value_type)
        b = pa.chunked_array([c.flatten() for c in b.chunks], b.type.value_type)
    x = a.to_numpy(zero_copy_only=False).astype(np.float64)
    y = b.to_numpy(zero_copy_only=False).astype(np.float64)
    if x.shape != y.shape:
        return float("inf")
    both_nan = np.isnan(x) & np.isnan(y)
    diff = np.where(both_nan, 0.0, np.abs(x - y))
    return float(np.nanmax(diff, initial=0.0)) if diff.size else 0.0


def _is_float(t: pa.DataType) -> bool:
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t):
        return _is_float(t.value_type)
    return bool(pa.types.is_floating(t))


def compare_tables(a: pa.Table, b: pa.Table) -> tuple[list[str], float]:
    """Problems (other than float noise) between two tables, and the largest float difference."""
    problems: list[str] = []
    if a.num_rows != b.num_rows:
        problems.append(f"rows {a.num_rows} != {b.num_rows}")
    for name in sorted(set(a.column_names) ^ set(b.column_names)):
        problems.append(f"column {name} only in one")
    worst = 0.0
    if problems:
        return problems, worst
    for name in a.column_names:
        if name in _SKIP_COLUMNS:
            continue
        x, y = a.column(name), b.column(name)
        if _is_float(x.type):
            diff = _max_float_diff(x, y)
            worst = max(worst, diff)
            if diff > _TOLERANCE:
                problems.append(f"{name}: floats differ by {diff:.2e}")
        elif not x.equals(y):
            problems.append(f"{name}: values differ")
    return problems, worst


def compare(a_dir: Path, b_dir: Path) -> int:
    """Print a line per table; 1 when any table differs."""
    failed = 0
    for corpus in sorted(p.name for p in a_dir.iterdir() if p.is_dir()):
        for path in sorted((a_dir / corpus).glob("*.parquet")):
            if path.stem in _SKIP_TABLES:
                continue
            other = b_dir / corpus / path.name
            if not other.exists():
                print(f"{corpus}/{path.stem}: missing in {b_dir}")  # noqa: T201
                failed = 1
                continue
            problems, worst = compare_tables(pq.read_table(path), pq.read_table(other))
            status = "; ".join(problems) if problems else "identical"
            print(f"{corpus}/{path.stem}: {status} (max float diff {worst:.1e})")  # noqa: T201
            failed |= bool(problems)
    return failed


def main(argv: list[str]) -> int:
    """Entry point."""
    if len(argv) == 2 and argv[0] == "run":
        run(Path(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__)  # noqa: T201
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
