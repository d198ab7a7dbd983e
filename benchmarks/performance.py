"""Speed and memory against the raw model, on BBC articles (issue: fast on one machine).

Usage: .venv/bin/python -m benchmarks.performance [--docs 500] [--repeat 2]
       (--docs 0 = the whole corpus)

Prints, in one run (the machine is noisy: compare the ratios; each repeat runs the three
measurements in turn and the medians are compared):
1. embedding stage (docthemes' embed_claims with the default encoder, empty cache: keys,
   dedupe, length-ordered batches, cache checkpoints, vectors gathered and written as Parquet
   row groups) vs bare SentenceTransformer.encode (torch) over the same claim texts, in this
   process: claims/s and ratio;
2. a cold `docthemes run` (fresh output dir and DAGSTER_HOME, so the ONNX export is made and
   checked too; process start to finish) vs the bare encode time of the claims it produced;
3. the run's peak resident memory and its time per step.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import LAST_PEAK_RSS_MB, bbc_files, cli_run, copy_articles, step_times
from pipeline.corpus import build_corpus
from pipeline.embed import (
    AUTO,
    EmbeddingCache,
    Encoder,
    embed_claims,
    load_model,
    open_encoder,
    resolve_model,
)
from pipeline.ingest import IngestConfig
from pipeline.storage import TableFile, write_table


def bare_encode(model, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    """Seconds for the plain sentence-transformers call, as a user would write it."""
    start = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return time.perf_counter() - start


def stage(encoder: Encoder, claims: TableFile, tmp: Path) -> float:
    """Seconds for docthemes' embedding stage on an empty cache, claims file to Parquet table."""
    run = tmp / f"stage-{time.monotonic_ns()}"
    cache = EmbeddingCache(run / "cache", "bench")
    start = time.perf_counter()
    embed_claims(claims, encoder.encode, cache, run / "emb.parquet", "bench")
    return time.perf_counter() - start


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=500, help="BBC articles; 0 = all 2,225")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    files = bbc_files(args.docs or None)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        raw = tmp / "raw"
        copy_articles(files, raw)
        texts = build_corpus(raw, IngestConfig(), max_sentence_chars=1000).tables["claims"]
        claims = TableFile(write_table(texts, tmp / "claims.parquet"))
        claim_texts = texts.column("text").to_pylist()
        model = load_model(resolve_model())
        model.encode(claim_texts[:64])  # warm-up: first-call allocations are not throughput
        encoder = open_encoder(resolve_model(), AUTO, tmp / "onnx")
        encoder.encode(claim_texts[:64])
        bare, ours, runs, peaks = [], [], [], []
        # Alternated, so drift on a shared machine hits all three alike.
        for r in range(args.repeat):
            # A cold run in a fresh process, fresh output dir and DAGSTER_HOME.
            t_run, out = cli_run(raw, tmp / f"out{r}", tmp / f"home{r}")
            runs.append(t_run)
            peaks.append(LAST_PEAK_RSS_MB[0])
            steps, embed_meta = step_times(tmp / f"home{r}")
            bare.append(bare_encode(model, claim_texts))
            ours.append(stage(encoder, claims, tmp))
    n = len(claim_texts)
    b, o, t_run = float(np.median(bare)), float(np.median(ours)), float(np.median(runs))
    print(f"corpus: {len(files)} BBC articles, {n} claims ({len(set(claim_texts))} distinct texts)")
    print(f"1. bare encode      {b:8.1f} s  {n / b:8.1f} claims/s   (median of {args.repeat})")
    print(
        f"   embedding stage  {o:8.1f} s  {n / o:8.1f} claims/s   {b / o:.2f}x the bare "
        f"throughput (backend {encoder.backend})"
    )
    print(
        f"2. cold docthemes run {t_run:6.1f} s = {t_run / b:.2f}x bare encode (target <= 0.70x; "
        f"median of {args.repeat}: {', '.join(f'{t:.1f}' for t in runs)} s)"
    )
    print(
        f"3. peak RSS of the run (process and children, sampled every 0.1 s): "
        f"{max(peaks):,.0f} MB (target <= 2,500 MB on the whole corpus)"
    )
    print("   time per step, last run:")
    for key, seconds in sorted(steps.items(), key=lambda kv: -kv[1])[:8]:
        print(f"   step {key:<40} {seconds:7.1f} s")
    print(f"   embedding step metadata: {embed_meta}")
    print(out.splitlines()[1])


if __name__ == "__main__":
    main()
