"""The corpus stage: raw dir to documents, rejects, duplicates, segments and claims, streaming.

Files whose path, size and mtime match the last published run are not read again, and documents
whose id was already split keep their segments and claims: a night with 20 new articles reads and
splits 20 articles. The reuse is keyed by a *state key* (configuration plus pipeline version)
stored in the `documents` table's metadata; a different key means a full rebuild.

Memory does not grow with the corpus's text. :func:`write_corpus` makes three passes:

1. Read the files in path order, writing each document's row to a work file.
2. Read the work file back in doc_id order (DuckDB sorts it, out of core past its memory limit)
   and split each new document (or copy its segments and claims from last night's tables, read
   in the same order), writing `segments` and `claims` a batch at a time and checking every
   row's offsets against its document's text.
3. Rewrite the documents with their claim counts and near-duplicate flags.

What stays in memory for the whole run is per-document keys (ids, paths and a 256-byte MinHash
signature), not texts, rows or claims.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from pipeline import validate
from pipeline.claims import extract_claims, load_gazetteer
from pipeline.ingest import (
    DirectoryScan,
    IngestConfig,
    load_signatures,
    minhash_signature,
    near_duplicates,
    save_signatures,
)
from pipeline.manifest import PIPELINE_VERSION, config_hash
from pipeline.parallel import Workers
from pipeline.progress import Progress
from pipeline.reuse import CORPUS_TABLES, STATE_KEY, PreviousCorpus, RowsByDoc
from pipeline.schemas import SCHEMAS, to_table
from pipeline.storage import BATCH_ROWS, ParquetSink, TableFile, read_table, write_table

__all__ = [
    "CORPUS_TABLES",
    "Batching",
    "STATE_KEY",
    "Corpus",
    "CorpusStats",
    "PreviousCorpus",
    "SplitPart",
    "build_corpus",
    "split_documents",
    "state_key",
    "write_corpus",
]

log = logging.getLogger(__name__)

LISTED_AT: Final = b"docthemes.listed_at"
# DuckDB's memory for the doc_id sort; past it, the sort spills to the work dir.
_SORT_MEMORY: Final = "256MB"
_TEXTS_SCHEMA: Final = pa.schema([("doc_id", pa.string()), ("text", pa.string())])


@dataclass(frozen=True, slots=True)
class Batching:
    """How much the corpus stage handles at a time; none of it changes the tables.

    Args:
        documents: Documents per batch and row group (~1 MB of news text: a unit readers can
            fetch alone).
        sorted_texts: Documents per batch read back in doc_id order.
        rows: Segments and claims per batch written (and offset-checked).
        split_documents: New documents per split task (see :class:`~pipeline.parallel.Workers`).
        read_files: New files per read task, when the workers are a cluster's.
    """

    documents: int = 512
    sorted_texts: int = 64
    rows: int = BATCH_ROWS
    split_documents: int = 64
    read_files: int = 64


def state_key(config: IngestConfig, max_sentence_chars: int) -> str:
    """Hash of everything that decides the corpus tables besides the files themselves."""
    return config_hash(
        {
            "pipeline": PIPELINE_VERSION,
            "ingest": dataclasses.asdict(config),
            "max_sentence_chars": max_sentence_chars,
        }
    )


@dataclass(slots=True)
class CorpusStats:
    """How much work building the corpus took, and what its own checks found."""

    n_read: int = 0
    n_reused: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    docs_split: int = 0
    docs_reused: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Corpus:
    """The five corpus tables in memory (see :func:`build_corpus`)."""

    tables: dict[str, pa.Table]
    stats: CorpusStats


def build_corpus(
    raw_dir: str | os.PathLike[str],
    config: IngestConfig,
    *,
    max_sentence_chars: int,
    previous: PreviousCorpus | None = None,
    signatures_path: str | os.PathLike[str] | None = None,
    batching: Batching = Batching(),
    workers: Workers = Workers(),
    read_on: Workers | None = None,
) -> Corpus:
    """:func:`write_corpus` into a temporary dir, read back: for tests and small corpora."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: Path(tmp) / f"{name}.parquet" for name in CORPUS_TABLES}
        stats = write_corpus(
            raw_dir,
            config,
            paths,
            max_sentence_chars=max_sentence_chars,
            previous=previous,
            signatures_path=signatures_path,
            batching=batching,
            workers=workers,
            read_on=read_on,
        )
        tables = {name: read_table(path) for name, path in paths.items()}
    return Corpus(tables, stats)


def write_corpus(
    raw_dir: str | os.PathLike[str],
    config: IngestConfig,
    paths: Mapping[str, Path],
    *,
    max_sentence_chars: int,
    previous: PreviousCorpus | None = None,
    signatures_path: str | os.PathLike[str] | None = None,
    scan_progress: Progress | None = None,
    split_progress: Progress | None = None,
    batching: Batching = Batching(),
    workers: Workers = Workers(),
    read_on: Workers | None = None,
    rejected: Sequence[Mapping[str, Any]] = (),
    raw_location: str | None = None,
) -> CorpusStats:
    """Ingest the raw dir and split the documents, writing the five tables as it goes.

    Args:
        raw_dir: Folder of articles.
        config: Ingestion settings.
        paths: Destination file of each of :data:`CORPUS_TABLES` (written atomically; work
            files go in a temporary folder beside the documents table).
        max_sentence_chars: Longest segment.
        previous: The last run's tables (see :meth:`PreviousCorpus.from_files`).
        signatures_path: Near-duplicate signature cache (a Parquet file); read if it exists,
            rewritten with the current documents' signatures. A cache only: any version of it
            gives the same tables, since a signature is keyed by doc_id, a hash of the text.
        scan_progress: Told the files scanned (of those listed) as they are, finished after.
        split_progress: Told the documents split or reused (of all documents), finished after.
        batching: How much is handled at a time (see :class:`Batching`).
        workers: Where new files are read and new documents split (this process by default).
        read_on: Where new files are read, if not on ``workers`` (a raw dir that only this
            machine has, such as an object store's local mirror).
        rejected: Files rejected before the folder was read (``rejected_files`` rows: objects
            of an object store that cannot be files of its mirror).
        raw_location: Where the files really are when ``raw_dir`` is a mirror (an s3:// URL):
            ``documents.ingested_from`` is then ``<raw_location>/<source_path>``.

    Returns:
        Counts, and problems found by the offset check made while writing (every segment's
        and claim's text must equal its document's text at its offsets).
    """
    listed_at = dt.datetime.now(dt.UTC)
    work = Path(tempfile.mkdtemp(prefix=".tmp-corpus-", dir=Path(paths["documents"]).parent))
    try:
        signatures = load_signatures(signatures_path) if signatures_path and previous else {}
        scanned = _scan(
            raw_dir,
            config,
            previous,
            signatures,
            work,
            scan_progress,
            batching,
            workers if read_on is None else read_on,
            rejected,
            raw_location,
        )
        if signatures_path:
            save_signatures(signatures_path, signatures, scanned.doc_ids)
        stats = scanned.stats
        n_claims = _split(
            _in_doc_id_order(scanned.documents, work, batching.sorted_texts),
            previous,
            max_sentence_chars,
            paths,
            stats,
            split_progress,
            len(scanned.doc_ids),
            batching,
            workers,
        )
        near = near_duplicates(
            scanned.doc_ids,
            signatures,
            lambda rows: _texts_at(scanned.documents, rows),
            config.near_duplicate_threshold,
        )
        metadata = {
            STATE_KEY: state_key(config, max_sentence_chars).encode(),
            LISTED_AT: listed_at.isoformat().encode(),
        }
        _finish_documents(
            scanned.documents, paths["documents"], n_claims, near, metadata, batching.documents
        )
        write_table(to_table(scanned.rejected, SCHEMAS["rejected_files"]), paths["rejected_files"])
        write_table(to_table(scanned.duplicates, SCHEMAS["duplicates"]), paths["duplicates"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return stats


@dataclass(slots=True)
class _Scanned:
    documents: TableFile
    doc_ids: list[str]
    rejected: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    stats: CorpusStats


def _scan(
    raw_dir: str | os.PathLike[str],
    config: IngestConfig,
    previous: PreviousCorpus | None,
    signatures: dict[str, np.ndarray],
    work: Path,
    progress: Progress | None,
    batching: Batching,
    workers: Workers,
    rejected_before: Sequence[Mapping[str, Any]] = (),
    raw_location: str | None = None,
) -> _Scanned:
    """Pass 1: documents to a work file, in path order (new files read on ``workers``)."""
    scan = DirectoryScan(
        raw_dir, config, previous.files if previous else None, workers, batching.read_files
    )
    documents = TableFile(work / "documents.parquet")
    doc_ids: list[str] = []
    rejected: list[dict[str, Any]] = [dict(r) for r in rejected_before]
    duplicates: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []

    doc_batch = batching.documents
    with ParquetSink(documents.path, SCHEMAS["documents"], doc_batch, compress=False) as sink:
        for n_done, (kind, row) in enumerate(scan, 1):
            if progress is not None:
                progress(n_done, scan.n_files)
            if kind == "rejected":
                rejected.append(row)
                continue
            if kind == "duplicate":
                duplicates.append(row)
                continue
            doc_ids.append(row["doc_id"])
            if raw_location is not None:
                row = {**row, "ingested_from": f"{raw_location}/{row['source_path']}"}
            if row["doc_id"] not in signatures:
                sig = minhash_signature(row["text"])
                if sig is not None:
                    signatures[row["doc_id"]] = sig
            batch.append({**row, "near_duplicate_of": None, "near_duplicate_jaccard": None})
            if len(batch) >= doc_batch:
                sink.write(to_table(batch, SCHEMAS["documents"]))
                batch.clear()
        sink.write(to_table(batch, SCHEMAS["documents"]))
    if progress is not None:
        progress.finish()
    rejected.sort(key=lambda r: r["source_path"])
    outcomes = {"documents": len(doc_ids), "duplicates": len(duplicates)}
    for r in rejected:
        outcomes[f"rejected_{r['reason']}"] = outcomes.get(f"rejected_{r['reason']}", 0) + 1
    stats = CorpusStats(scan.n_read, scan.n_reused, outcomes)
    return _Scanned(documents, doc_ids, rejected, duplicates, stats)


def _in_doc_id_order(
    documents: TableFile, work: Path, batch_size: int
) -> Iterator[tuple[str, str]]:
    """``(doc_id, text)`` of every document of the work file, in doc_id order."""
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": _SORT_MEMORY,
        "temp_directory": str(work / "duckdb"),
        "threads": 1,
    }
    with duckdb.connect(config=config) as con:
        ordered = con.read_parquet(str(documents.path)).project("doc_id, text").order("doc_id")
        for batch in ordered.to_arrow_reader(batch_size):
            yield from zip(
                batch.column("doc_id").to_pylist(), batch.column("text").to_pylist(), strict=True
            )


def _split(
    documents: Iterator[tuple[str, str]],
    previous: PreviousCorpus | None,
    max_sentence_chars: int,
    paths: Mapping[str, Path],
    stats: CorpusStats,
    progress: Progress | None,
    n_documents: int,
    batching: Batching,
    workers: Workers,
) -> dict[str, int]:
    """Pass 2: segments and claims in doc_id order; returns claims per document.

    New documents are split in tasks of ``batching.split_documents`` (on ``workers``); the
    driver keeps their order, copies reused documents' rows and checks every offset.
    """
    known = previous.split_ids if previous else frozenset()
    old = {
        name: RowsByDoc(getattr(previous, name) if previous else None, SCHEMAS[name])
        for name in ("segments", "claims")
    }
    n_claims: dict[str, int] = {}
    problems: dict[str, list[str]] = {"segments": [], "claims": []}
    split = functools.partial(split_documents, max_sentence_chars=max_sentence_chars)
    chunks = _chunks(documents, known, batching.split_documents)
    with (
        ParquetSink(paths["segments"], SCHEMAS["segments"]) as segment_sink,
        ParquetSink(paths["claims"], SCHEMAS["claims"]) as claim_sink,
    ):
        out = {"segments": _Batch(segment_sink), "claims": _Batch(claim_sink)}
        texts: dict[str, str] = {}

        def flush() -> None:
            docs = pa.table([list(texts), list(texts.values())], schema=_TEXTS_SCHEMA)
            for name, buffer in out.items():
                problems[name] += validate.check_offsets(docs, buffer.flush(), name)
            texts.clear()

        for (chunk, _), part in workers.map(split, chunks, lambda c: c[1] or None):
            parts = iter(part.documents() if part is not None else ())
            for doc_id, text in chunk:
                texts[doc_id] = text
                if doc_id in known:
                    rows = {name: rows.take(doc_id) for name, rows in old.items()}
                    stats.docs_reused += 1
                else:
                    rows = next(parts)
                    stats.docs_split += 1
                for name, table in rows.items():
                    out[name].add(table)
                n_claims[doc_id] = rows["claims"].num_rows
                if max(len(b) for b in out.values()) >= batching.rows:
                    flush()
                if progress is not None:
                    progress(len(n_claims), n_documents)
        flush()
    if progress is not None:
        progress.finish()
    stats.problems = {name: found for name, found in problems.items() if found}
    return n_claims


_Docs = list[tuple[str, str]]


def _chunks(
    documents: Iterator[tuple[str, str]], known: frozenset[str], size: int
) -> Iterator[tuple[_Docs, _Docs]]:
    """``(documents, those of them to split)``, ``size`` documents at a time."""
    chunk: _Docs = []
    for doc in documents:
        chunk.append(doc)
        if len(chunk) >= size:
            yield chunk, [d for d in chunk if d[0] not in known]
            chunk = []
    if chunk:
        yield chunk, [d for d in chunk if d[0] not in known]


@dataclass(frozen=True, slots=True)
class SplitPart:
    """The segments and claims of a batch of documents, in the documents' order."""

    segments: pa.Table
    claims: pa.Table
    counts: tuple[tuple[int, int], ...]  # (segments, claims) of each document

    def documents(self) -> Iterator[dict[str, pa.Table]]:
        """Each document's rows (zero-copy slices), in order."""
        seg_at = claim_at = 0
        for n_segments, n_claims in self.counts:
            yield {
                "segments": self.segments.slice(seg_at, n_segments),
                "claims": self.claims.slice(claim_at, n_claims),
            }
            seg_at, claim_at = seg_at + n_segments, claim_at + n_claims


def split_documents(documents: _Docs, max_sentence_chars: int) -> SplitPart:
    """Split ``(doc_id, text)`` pairs into segments and claims: one data-parallel task.

    Pure and picklable, so a cluster's workers run it; the tables come back as Arrow.
    """
    gaz = load_gazetteer()
    segments: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    counts = []
    for doc_id, text in documents:
        part = extract_claims(doc_id, text, max_chars=max_sentence_chars, gazetteer=gaz)
        segments += part.segments
        claims += part.claims
        counts.append((len(part.segments), len(part.claims)))
    return SplitPart(
        to_table(segments, SCHEMAS["segments"]), to_table(claims, SCHEMAS["claims"]), tuple(counts)
    )


class _Batch:
    """Tables on their way to a sink, in order."""

    def __init__(self, sink: ParquetSink) -> None:
        self._sink = sink
        self._parts: list[pa.Table] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, table: pa.Table) -> None:
        self._parts.append(table)
        self._n += table.num_rows

    def flush(self) -> pa.Table:
        """Write the rows held and return them (for the offset check)."""
        table = pa.concat_tables(self._parts) if self._parts else self._sink.schema.empty_table()
        self._sink.write(table)
        self._parts, self._n = [], 0
        return table


def _texts_at(documents: TableFile, rows: list[int]) -> list[str]:
    """Texts of the documents at these row numbers of the work file (near-duplicate checks)."""
    texts: list[str] = documents.take(rows, ["text"]).column("text").to_pylist() if rows else []
    return texts


def _finish_documents(
    work: TableFile,
    path: Path,
    n_claims: Mapping[str, int],
    near: Mapping[str, tuple[str, float]],
    metadata: dict[bytes, bytes],
    batch_size: int,
) -> None:
    """Pass 3: the documents table, with claim counts and near-duplicate flags filled in."""
    schema = SCHEMAS["documents"]
    schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    with ParquetSink(path, schema, batch_size) as sink:
        for batch in work.batches(batch_size=batch_size):
            ids = batch.column("doc_id").to_pylist()
            flags = [near.get(d, (None, None)) for d in ids]
            table = pa.Table.from_batches([batch])
            for name, values in (
                ("n_claims", pa.array([n_claims.get(d, 0) for d in ids], pa.int32())),
                ("near_duplicate_of", pa.array([f[0] for f in flags], pa.string())),
                ("near_duplicate_jaccard", pa.array([f[1] for f in flags], pa.float32())),
            ):
                table = table.set_column(
                    table.schema.get_field_index(name), schema.field(name), values
                )
            sink.write(table)
