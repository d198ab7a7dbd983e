"""Ingest the BBC corpus: counts per outcome and files/second.

Usage: .venv/bin/python -m benchmarks.ingest_bbc   (DOCTHEMES_BBC_DIR overrides the location)
"""

import time
from collections import Counter

from benchmarks.common import bbc_dir, peak_rss_mb
from pipeline.ingest import ingest_directory


def main() -> None:
    """Ingest the corpus once and print the figures."""
    root = bbc_dir()
    start = time.perf_counter()
    result = ingest_directory(root)
    elapsed = time.perf_counter() - start
    counts = result.outcome_counts()
    n_files = counts["documents"] + counts["duplicates"] + len(result.rejected)
    print(f"raw dir: {root}")
    for key, value in sorted(counts.items()):
        print(f"  {key:<28} {value:>6}")
    print(f"  {'files accounted for':<28} {n_files:>6}")
    encodings = Counter(d["encoding"] for d in result.documents)
    print("encodings:", dict(encodings))
    for d in result.documents:
        if d["encoding"] != "utf-8":
            print(f"  {d['source_path']}: {d['encoding']}")
    near = sum(1 for d in result.documents if d["near_duplicate_of"])
    print(f"near-duplicates flagged (Jaccard >= 0.9): {near}")
    print(f"titles found: {sum(1 for d in result.documents if d['title'])}")
    rate = n_files / elapsed
    print(f"wall time {elapsed:.2f} s, {rate:,.0f} files/s, peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
