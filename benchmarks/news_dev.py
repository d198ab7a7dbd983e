"""The labelled news set (``../shared/eval/news_dev``), run through the pipeline's own stages.

The articles are ingested, split into claims and embedded exactly as a run would do it; each
labelled sentence is then matched to the claims that overlap its span, so a benchmark scores the
product's primary theme for the sentence, not a classifier fed the gold text.
"""

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, CachedEncoder
from pipeline.corpus import build_corpus
from pipeline.ingest import IngestConfig

NEWS_DEV = Path(os.environ.get("DOCTHEMES_NEWS_DEV", ROOT.parent / "shared" / "eval" / "news_dev"))
LABELS = ("energy_axis", "military_collaboration", "multipolarity", "isolation", "none")


@dataclass
class NewsDev:
    """The corpus's claims (table order) and each gold sentence's claim."""

    claim_ids: list[str]
    doc_ids: list[str]
    texts: list[str]
    paragraphs: list[int]
    embeddings: np.ndarray
    gold_claim: np.ndarray  # per gold sentence, the position of its claim (-1: none overlaps)
    gold_label: list[str]
    gold_file: list[str]
    gold_sentence: list[str]
    embed: object  # texts -> vectors, with the benchmark cache


def news_dir() -> Path:
    """The labelled set (never copied into the repository)."""
    if not (NEWS_DEV / "gold.csv").is_file():
        raise SystemExit(f"news_dev not found at {NEWS_DEV}; set DOCTHEMES_NEWS_DEV")
    return NEWS_DEV


def load_news_dev() -> NewsDev:
    """Ingest, split and embed news_dev's articles; map each gold sentence to a claim."""
    root = news_dir()
    corpus = build_corpus(root / "articles", IngestConfig(), max_sentence_chars=1000)
    claims = corpus.tables["claims"]
    docs = corpus.tables["documents"].select(["doc_id", "source_path", "text"]).to_pylist()
    doc_of_file = {Path(d["source_path"]).name: d for d in docs}
    duplicates = corpus.tables["duplicates"].select(["source_path", "duplicate_of"]).to_pylist()
    for dup in duplicates:  # a file whose text is already a document: score on that document
        original = next((d for d in docs if d["doc_id"] == dup["duplicate_of"]), None)
        if original is not None:
            doc_of_file[Path(dup["source_path"]).name] = original

    claim_ids = claims.column("claim_id").to_pylist()
    doc_ids = claims.column("doc_id").to_pylist()
    texts = claims.column("text").to_pylist()
    paragraphs = claims.column("paragraph").to_pylist()
    starts = claims.column("char_start").to_pylist()
    ends = claims.column("char_end").to_pylist()
    by_doc: dict[str, list[int]] = {}
    for i, d in enumerate(doc_ids):
        by_doc.setdefault(d, []).append(i)

    gold_claim, gold_label, gold_file, gold_sentence = [], [], [], []
    with open(root / "gold.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            doc = doc_of_file[row["file"]]
            # The document text is normalised, so the raw file's offsets may have moved.
            at = doc["text"].find(row["sentence"].strip())
            if at < 0:
                at = int(row["char_start"])
            span = (at, at + len(row["sentence"].strip()))
            best, overlap = -1, 0
            for i in by_doc.get(doc["doc_id"], []):
                o = min(span[1], ends[i]) - max(span[0], starts[i])
                if o > overlap:
                    best, overlap = i, o
            gold_claim.append(best)
            gold_label.append(row["theme"])
            gold_file.append(row["file"])
            gold_sentence.append(row["sentence"])

    embed = CachedEncoder()
    return NewsDev(
        claim_ids,
        doc_ids,
        texts,
        paragraphs,
        embed(texts),
        np.asarray(gold_claim),
        gold_label,
        gold_file,
        gold_sentence,
        embed,
    )
