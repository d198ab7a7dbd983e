"""`docthemes search` cost: time per query and memory, on synthetic published tables.

Usage: .venv/bin/python -m benchmarks.search [--claims 40076 400000] [--out DIR]

Writes the tables a search reads (claim_embeddings with 384-dim unit vectors, claims,
claim_themes, documents, themes) for each size into a temp dir, then times a query (the scan
and the lookups; the query's own encoding is timed once with the packaged model) and reports
the peak RSS growth during the scan: it should not grow with the number of claims. ``--out`` times queries over the
published tables of a real run instead (e.g. a `docthemes run` over the BBC corpus), with the
query texts below.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline import explore
from pipeline.storage import table_path, write_table

DIM = 384


def write_tables(out: Path, n: int) -> None:
    """Synthetic tables of ``n`` claims in 20-claim documents (deterministic)."""
    rng = np.random.default_rng(0)
    ids = [f"c{i:08d}" for i in range(n)]
    docs = [f"d{i // 20:07d}" for i in range(n)]
    themes = ["energy_axis", "military_collaboration", "multipolarity", "isolation"]
    block = 100_000
    parts = []
    for a in range(0, n, block):
        v = rng.standard_normal((min(block, n - a), DIM)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        parts.append(pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), DIM))
    write_table(
        pa.table({"claim_id": ids, "embedding": pa.chunked_array(parts)}),
        table_path(out, "claim_embeddings"),
        compress=False,
    )
    write_table(
        pa.table({"claim_id": ids, "doc_id": docs, "text": [f"claim {i}" for i in range(n)]}),
        table_path(out, "claims"),
    )
    write_table(
        pa.table(
            {
                "claim_id": ids,
                "theme_id": [themes[i % 4] for i in range(n)],
                "rank": pa.array([1] * n, pa.int16()),
            }
        ),
        table_path(out, "claim_themes"),
    )
    doc_ids = sorted(set(docs))
    write_table(
        pa.table(
            {
                "doc_id": doc_ids,
                "source_path": [f"{d}.txt" for d in doc_ids],
                "title": doc_ids,
                "published_date": pa.array([None] * len(doc_ids), pa.date32()),
            }
        ),
        table_path(out, "documents"),
    )
    write_table(pa.table({"theme_id": themes}), table_path(out, "themes"))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


QUERIES = (
    "gas pipeline deals",
    "interest rates rise",
    "mobile phone sales",
    "election campaign",
    "football transfer",
)


def search_real(out: str, model: Any) -> None:
    """Time each query (encoding, scan and lookups) over a real run's published tables."""
    import pyarrow.parquet as pq

    from pipeline.embed import embed_texts
    from pipeline.storage import table_path

    n = pq.ParquetFile(table_path(out, "claim_embeddings")).metadata.num_rows
    before = peak_rss_mb()
    for text in QUERIES:
        t0 = time.perf_counter()
        query = embed_texts(model, [text])[0]
        rows = explore.search(out, query, 10, None)
        seconds = time.perf_counter() - t0
        top = rows[0] if rows else {}
        print(
            f"{text!r}: {seconds:.2f} s over {n:,} claims; top {top.get('score', 0):.3f} "
            f"{str(top.get('text', ''))[:70]!r}"
        )
    print(f"peak RSS {peak_rss_mb():.0f} MB (+{peak_rss_mb() - before:.0f} MB during the queries)")


def main() -> None:
    """Print seconds per query and peak memory for each size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, nargs="+", default=[40_076, 400_000])
    parser.add_argument("--out", help="published tables of a real run (skips the synthetic ones)")
    args = parser.parse_args()
    from pipeline.embed import embed_texts, load_model, resolve_model

    t0 = time.perf_counter()
    model = load_model(resolve_model())
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    query = embed_texts(model, ["gas pipeline deals"])[0]
    print(f"model load {t_load:.1f} s; encoding the query {time.perf_counter() - t0:.3f} s")
    if args.out:
        search_real(args.out, model)
        return
    for n in args.claims:
        with tempfile.TemporaryDirectory() as tmp:
            write_tables(Path(tmp), n)
            before = peak_rss_mb()
            times = []
            for theme in (None, None, "isolation"):
                t0 = time.perf_counter()
                rows = explore.search(tmp, query, 10, theme)
                times.append(time.perf_counter() - t0)
            assert len(rows) == 10
            print(
                f"{n:>9,} claims: query {min(times[:2]):.2f} s, with --theme {times[2]:.2f} s; "
                f"peak RSS {peak_rss_mb():.0f} MB (+{peak_rss_mb() - before:.0f} MB during the scans)"
            )


if __name__ == "__main__":
    main()
