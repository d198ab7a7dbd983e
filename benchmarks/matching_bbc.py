"""Claim matching on the BBC corpus: time against embedding, memory, and spread not inflated.

Usage: .venv/bin/python -m benchmarks.matching_bbc [--limit N] [--out DIR]

Runs ``docthemes run`` cold on the BBC articles (or reuses the tables of ``--out`` if an
earlier run left them there), then prints:

1. the claim_matching step's time against the claim_embeddings step's (from the run's
   Dagster step stats: the same run, the same machine);
2. matching again in this process, from scratch, with its peak memory above the process's
   baseline and the size an n x n similarity matrix would have had;
3. how duplicates count: every cluster's `n_documents` and `n_sources` against a naive count
   of distinct document ids, the clusters holding claims of a document and its near
   duplicate (one source), and that no match pairs a document with its near duplicate.
"""

import argparse
import gc
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.common import bbc_files, cli_run, copy_articles, peak_rss_mb, step_times
from pipeline.matching import MatchConfig, match_claims, read_claim_index
from pipeline.storage import TableFile


def main() -> None:
    """Run (or reuse) the BBC tables and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=None, help="an even spread of N articles")
    parser.add_argument("--out", type=Path, help="output dir: reused if it holds tables")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="matching-bbc-"))
    out = args.out or work / "out"
    home = out.parent / f"{out.name}-dagster-home"
    if not (out / "claim_clusters.parquet").exists():
        files = bbc_files(args.limit)
        copy_articles(files, work / "raw")
        seconds, _ = cli_run(work / "raw", out, home)
        print(f"docthemes run, cold, {len(files)} articles: {seconds:.1f} s")
    steps, _ = step_times(home)
    embed = next(v for k, v in steps.items() if k.startswith("claim_embeddings"))
    match = next(v for k, v in steps.items() if k.startswith("claim_matching"))
    print(f"\n1. claim_embeddings step {embed:.1f} s; claim_matching step {match:.1f} s: "
          f"{100 * match / embed:.1f}% of the embedding time")  # fmt: skip

    # Imports the step shares with the rest of the run (scikit-learn, the gazetteer) come first,
    # so what is measured is what matching itself holds.
    import sklearn.feature_extraction.text  # noqa: F401

    from pipeline.claims import load_gazetteer

    load_gazetteer()
    gc.collect()
    base = peak_rss_mb()
    start = time.perf_counter()
    index = read_claim_index(
        TableFile(out / "documents.parquet"),
        TableFile(out / "claims.parquet"),
        TableFile(out / "claim_embeddings.parquet"),
        work / "index",
    )
    read = time.perf_counter() - start
    result = match_claims(index, MatchConfig())
    total = time.perf_counter() - start
    rss = peak_rss_mb()
    tracemalloc.start()  # a second pass, traced (slower): what matching allocates at its peak
    match_claims(index, MatchConfig())
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    n = len(index.claim_ids)
    print(
        f"\n2. {n:,} claims: read {read:.1f} s, matched {total - read:.1f} s; peak RSS "
        f"{rss:.0f} MB ({rss - base:+.0f} MB over the {base:.0f} MB before), peak of the "
        f"allocations {traced:.0f} MB (tracemalloc; the vectors are a memory map besides); "
        f"an n x n float32 matrix would be {4 * n * n / 2**20:,.0f} MB"
    )
    print(f"   {result.stats}")
    del index, result

    docs = pq.read_table(out / "documents.parquet", columns=["doc_id", "near_duplicate_of"])
    family = {d["doc_id"]: d["near_duplicate_of"] or d["doc_id"] for d in docs.to_pylist()}
    near = sum(1 for d, f in family.items() if d != f)
    dups = pq.read_table(out / "duplicates.parquet").num_rows
    clusters = pq.read_table(
        out / "claim_clusters.parquet", columns=["cluster_id", "doc_id", "n_documents", "n_sources"]
    ).to_pylist()
    by_cluster: dict[str, list[dict[str, object]]] = {}
    for row in clusters:
        by_cluster.setdefault(str(row["cluster_id"]), []).append(row)
    with_near = 0
    for rows in by_cluster.values():
        ids = {str(r["doc_id"]) for r in rows}
        families = {family[d] for d in ids}
        assert rows[0]["n_documents"] == len(families), "n_documents counts near duplicates"
        assert int(str(rows[0]["n_sources"])) <= len(families), "n_sources above families"
        with_near += len(ids) > len(families)
    matches = pq.read_table(out / "claim_matches.parquet", columns=["doc_id", "other_doc_id"])
    paired = sum(
        family[a] == family[b]
        for a, b in zip(
            matches["doc_id"].to_pylist(), matches["other_doc_id"].to_pylist(), strict=True
        )
    )
    print(
        f"\n3. {dups} duplicate files (not documents), {near} near duplicates among "
        f"{len(family):,} documents; {len(by_cluster):,} clusters of {len(clusters):,} claims"
    )
    print(
        f"   clusters holding a document and its near duplicate: {with_near} (each counted as "
        "one document and one source, where a count of distinct doc_ids would say two)"
    )
    print(f"   matches pairing a document with its near duplicate: {paired}")
    sizes = sorted((len(r) for r in by_cluster.values()), reverse=True)
    print(f"   largest clusters (claims): {sizes[:10]}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
