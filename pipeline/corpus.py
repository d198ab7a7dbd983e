"""The corpus stage: raw dir to documents, rejects, duplicates, segments and claims, incrementally.

Files whose path, size and mtime match the last published run are not read again, and documents
whose id was already split keep their segments and claims: a night with 20 new articles reads and
splits 20 articles. The reuse is keyed by a *state key* (configuration plus pipeline version)
stored in the `documents` table's metadata; a different key means a full rebuild.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.claims import extract_claims, load_gazetteer
from pipeline.ingest import IngestConfig, IngestResult, PreviousFiles, ingest_directory
from pipeline.manifest import PIPELINE_VERSION, config_hash
from pipeline.schemas import SCHEMAS, to_table
from pipeline.storage import read_table, write_table

__all__ = ["CORPUS_TABLES", "STATE_KEY", "Corpus", "PreviousCorpus", "build_corpus", "state_key"]

log = logging.getLogger(__name__)

CORPUS_TABLES: Final = ("documents", "rejected_files", "duplicates", "segments", "claims")
STATE_KEY: Final = b"docthemes.state_key"
LISTED_AT: Final = b"docthemes.listed_at"


def state_key(config: IngestConfig, max_sentence_chars: int) -> str:
    """Hash of everything that decides the corpus tables besides the files themselves."""
    return config_hash(
        {
            "pipeline": PIPELINE_VERSION,
            "ingest": dataclasses.asdict(config),
            "max_sentence_chars": max_sentence_chars,
        }
    )


@dataclass(frozen=True, slots=True)
class PreviousCorpus:
    """The last published corpus tables, indexed for reuse.

    Segments and claims stay Arrow tables: a night reuses tens of thousands of them by filtering
    on doc_id, without turning each row into a Python object.
    """

    files: PreviousFiles
    segments: pa.Table
    claims: pa.Table

    @classmethod
    def from_tables(cls, tables: Mapping[str, pa.Table | None], key: str) -> PreviousCorpus | None:
        """Index previous tables; None when missing or produced under another state key."""
        docs = tables.get("documents")
        if docs is None or any(tables.get(n) is None for n in CORPUS_TABLES):
            return None
        if (docs.schema.metadata or {}).get(STATE_KEY) != key.encode():
            return None
        documents = {r["source_path"]: r for r in docs.to_pylist()}
        rejected = {r["source_path"]: r for r in tables["rejected_files"].to_pylist()}  # type: ignore[union-attr]
        duplicates = {r["source_path"]: r for r in tables["duplicates"].to_pylist()}  # type: ignore[union-attr]
        return cls(
            PreviousFiles(documents, rejected, duplicates),
            tables["segments"].cast(SCHEMAS["segments"]),  # type: ignore[union-attr]
            tables["claims"].cast(SCHEMAS["claims"]),  # type: ignore[union-attr]
        )

    def split_doc_ids(self) -> set[str]:
        """Documents whose segments and claims are already in the tables."""
        return set(self.segments.column("doc_id").to_pylist())

    def parts_of(self, doc_ids: set[str]) -> tuple[pa.Table, pa.Table]:
        """The segments and claims of ``doc_ids``."""
        keep = pa.array(sorted(doc_ids), pa.string())
        return (
            self.segments.filter(pc.is_in(self.segments.column("doc_id"), keep)),
            self.claims.filter(pc.is_in(self.claims.column("doc_id"), keep)),
        )


@dataclass(slots=True)
class Corpus:
    """The five corpus tables and how much work building them took."""

    tables: dict[str, pa.Table]
    ingest: IngestResult
    docs_split: int
    docs_reused: int


def build_corpus(
    raw_dir: str | os.PathLike[str],
    config: IngestConfig,
    *,
    max_sentence_chars: int,
    previous: PreviousCorpus | None = None,
    signatures_path: str | os.PathLike[str] | None = None,
) -> Corpus:
    """Ingest the raw dir and split the documents into segments and claims.

    Args:
        raw_dir: Folder of articles.
        config: Ingestion settings.
        max_sentence_chars: Longest segment.
        previous: The last run's tables (see :meth:`PreviousCorpus.from_tables`).
        signatures_path: Near-duplicate signature cache (a Parquet file); read if it exists,
            rewritten with the current documents' signatures. A cache only: any version of it
            gives the same tables, since a signature is keyed by doc_id, a hash of the text.
    """
    listed_at = dt.datetime.now(dt.UTC)
    signatures = load_signatures(signatures_path) if signatures_path and previous else {}
    result = ingest_directory(raw_dir, config, previous.files if previous else None, signatures)
    if signatures_path:
        save_signatures(signatures_path, signatures, [d["doc_id"] for d in result.documents])
    gaz = load_gazetteer()
    known = previous.split_doc_ids() if previous else set()
    new_segments: list[dict[str, Any]] = []
    new_claims: list[dict[str, Any]] = []
    claims_per_doc: dict[str, int] = {}
    reused_ids: set[str] = set()
    for doc in result.documents:
        if doc["doc_id"] in known:
            reused_ids.add(doc["doc_id"])
            continue
        part = extract_claims(
            doc["doc_id"], doc["text"], max_chars=max_sentence_chars, gazetteer=gaz
        )
        new_segments.extend(part.segments)
        new_claims.extend(part.claims)
        claims_per_doc[doc["doc_id"]] = len(part.claims)
    parts = [
        to_table(new_segments, SCHEMAS["segments"]),
        to_table(new_claims, SCHEMAS["claims"]),
    ]
    if previous and reused_ids:
        old_segments, old_claims = previous.parts_of(reused_ids)
        parts = [
            pa.concat_tables([old_segments, parts[0]]),
            pa.concat_tables([old_claims, parts[1]]),
        ]
        counts = pc.value_counts(old_claims.column("doc_id"))
        for item in counts.to_pylist():
            claims_per_doc[item["values"]] = item["counts"]
    order = [("doc_id", "ascending"), ("position", "ascending")]
    for doc in result.documents:
        doc["n_claims"] = claims_per_doc.get(doc["doc_id"], 0)
    tables = {
        "documents": to_table(result.documents, SCHEMAS["documents"]),
        "rejected_files": to_table(result.rejected, SCHEMAS["rejected_files"]),
        "duplicates": to_table(result.duplicates, SCHEMAS["duplicates"]),
        "segments": parts[0].sort_by(order).combine_chunks(),
        "claims": parts[1].sort_by(order).combine_chunks(),
    }
    split, reused = len(result.documents) - len(reused_ids), len(reused_ids)
    docs = tables["documents"]
    tables["documents"] = docs.replace_schema_metadata(
        {
            **(docs.schema.metadata or {}),
            STATE_KEY: state_key(config, max_sentence_chars).encode(),
            LISTED_AT: listed_at.isoformat().encode(),
        }
    )
    return Corpus(tables, result, split, reused)


def load_signatures(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """MinHash signatures by doc_id from the cache file; empty if it does not exist."""
    if not os.path.exists(path):
        return {}
    try:
        table = read_table(path)
        col = table.column("signature").combine_chunks()
        matrix = col.values.to_numpy(zero_copy_only=False).reshape(len(col), -1)
        return dict(zip(table.column("doc_id").to_pylist(), matrix, strict=True))
    except (OSError, KeyError, ValueError, pa.ArrowException) as err:
        # Only a cache: recomputing every signature costs about a second per 2,000 articles.
        log.warning("ignoring unreadable signature cache %s: %s", path, err)
        return {}


def save_signatures(
    path: str | os.PathLike[str], signatures: Mapping[str, np.ndarray], doc_ids: list[str]
) -> None:
    """Write the signatures of ``doc_ids`` (removed documents drop out of the cache)."""
    kept = sorted(d for d in set(doc_ids) if d in signatures)
    if not kept:
        return
    matrix = np.stack([signatures[d] for d in kept]).astype(np.uint64)
    flat = pa.array(matrix.reshape(-1), type=pa.uint64())
    write_table(
        pa.table(
            {
                "doc_id": pa.array(kept, pa.string()),
                "signature": pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]),
            }
        ),
        path,
    )
