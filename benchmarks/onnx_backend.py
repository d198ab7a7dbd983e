"""The ONNX backends against torch: speed, and agreement on the seed claims and on BBC.

Usage: .venv/bin/python -m benchmarks.onnx_backend [--docs 200]

Exports the packaged model locally (no download) as the `onnx` (fp32) and `onnx-int8` backends
use it (pipeline/embed/onnx.py), then prints, on the claims of ``--docs`` BBC
articles: throughput of each against sentence-transformers with torch on the same texts, and the
cosine to the torch embeddings on the seed claims and on BBC (with the number of BBC claims below
0.99999, the bar `auto` holds the fp32 export to). Criteria for int8 from the performance issue:
>= 2x throughput and cosine >= 0.99 on the seed claims. Also prints how much an int8 vector
depends on its batch (dynamic quantisation scales activations per batch).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, bbc_files, copy_articles
from pipeline.corpus import build_corpus
from pipeline.embed import embed_texts, load_model, resolve_model
from pipeline.embed.onnx import OnnxEncoder, export_model
from pipeline.ingest import IngestConfig


def claims_of(raw: Path) -> list[str]:
    """Claim texts of the articles under ``raw``."""
    table = build_corpus(raw, IngestConfig(), max_sentence_chars=1000).tables["claims"]
    return table.column("text").to_pylist()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of unit vectors."""
    return np.einsum("ij,ij->i", a, b)


def main() -> None:
    """Export, time, compare."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--docs", type=int, default=200, help="BBC articles for throughput; 0 = all 2,225"
    )
    args = parser.parse_args()
    seeds = claims_of(ROOT / "data" / "raw")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        copy_articles(bbc_files(args.docs or None), tmp / "raw")
        texts = claims_of(tmp / "raw")
        spec = resolve_model()
        model = load_model(spec)
        t0 = time.perf_counter()
        int8 = export_model(spec, tmp, "onnx-int8")
        t_export = time.perf_counter() - t0
        fp32 = export_model(spec, tmp, "onnx")
        embed_texts(model, texts[:64])  # warm-up, as for the others below
        t0 = time.perf_counter()
        torch_vecs = embed_texts(model, texts)
        t_torch = time.perf_counter() - t0
        torch_seeds = embed_texts(model, seeds)
        print(f"{len(texts)} BBC claims, {len(seeds)} seed claims; int8 export {t_export:.1f} s")
        print(f"torch (sentence-transformers): {t_torch:6.1f} s {len(texts) / t_torch:7.1f}/s")
        for name, path in (("onnx (fp32)", fp32), ("onnx-int8", int8)):
            enc = OnnxEncoder(path, spec.path)
            enc.encode(texts[:64])
            t0 = time.perf_counter()
            vecs = enc.encode(texts)
            t = time.perf_counter() - t0
            seed_cos = cosines(enc.encode(seeds), torch_seeds)
            bbc_cos = cosines(vecs, torch_vecs)
            alone = np.concatenate([enc.encode([s]) for s in seeds])
            print(
                f"{name}: {t:6.1f} s {len(texts) / t:7.1f}/s = {t_torch / t:.2f}x torch; cosine "
                f"to torch: seeds min {seed_cos.min():.7f} mean {seed_cos.mean():.7f}, BBC min "
                f"{bbc_cos.min():.7f} mean {bbc_cos.mean():.7f}, BBC claims below 0.99999: "
                f"{int((bbc_cos < 0.99999).sum())} of {len(bbc_cos)}; "
                f"seed text alone vs in its batch: min cosine "
                f"{cosines(alone, enc.encode(seeds)).min():.4f}; {path.stat().st_size / 1e6:.0f} MB"
            )


if __name__ == "__main__":
    main()
