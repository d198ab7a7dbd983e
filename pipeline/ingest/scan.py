"""List and read the raw dir: every file becomes a document, a reject or a duplicate.

Every regular file under the raw dir ends up in exactly one of three places: a document, a
rejected file (with a short reason code and a detail), or a duplicate of a document. Nothing here
raises on a bad file; only an unusable raw dir itself is an error.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import functools
import os
import stat
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from pipeline.ingest.decode import Rejected
from pipeline.ingest.duplicates import find_near_duplicates
from pipeline.ingest.paths import relative_path, utf8_safe
from pipeline.ingest.read import Entry, file_mtime, read_document, read_documents
from pipeline.metadata import (
    METADATA_TABLES,
    SIDECAR_SUFFIX,
    ArticleMetadata,
    MetadataError,
    read_metadata_table,
    read_sidecar,
)
from pipeline.parallel import Workers

REJECT_REASONS: Final = {
    "unsupported_type": "extension not in the configured list",
    "not_a_file": "a directory, socket, FIFO or device with a document-like name",
    "outside_root": "a symlink that resolves outside the raw dir",
    "unreadable": "the OS refused to read it (permissions, broken link, I/O error)",
    "unstable": "the file changed while it was read; retried on the next run",
    "too_large": "over the configured size limit",
    "empty": "no text after normalisation",
    "binary": "binary content (NUL bytes or a known binary signature)",
    "undecodable": "not valid in any accepted encoding",
    "bad_metadata": "an article's sidecar or metadata row that cannot be used (the article is "
    "still read, without it)",
}

# Outcomes decided by a file's bytes alone: an unchanged file keeps them. Others (unreadable,
# unstable, outside_root, not_a_file) depend on the moment and are re-checked every run.
_CONTENT_REASONS: Final = frozenset(
    {"too_large", "empty", "binary", "undecodable", "unsupported_type"}
)


class RawDirError(ValueError):
    """The raw dir itself is missing or not a directory (a configuration error)."""


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Ingestion settings; see docs/configuration.md for the defaults' rationale."""

    extensions: tuple[str, ...] = (".txt",)
    max_bytes: int = 5_000_000
    legacy_encodings: tuple[str, ...] = ("cp1252", "latin_1")
    near_duplicate_threshold: float = 0.9
    read_attempts: int = 3

    def __post_init__(self) -> None:
        """Validate eagerly so a bad setting fails before any file is read."""
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise ValueError(
                f"near_duplicate_threshold must be in (0, 1], got {self.near_duplicate_threshold}"
            )
        for enc in self.legacy_encodings:
            codecs.lookup(enc)  # raises LookupError naming the unknown encoding
        if not self.extensions or any(not e.startswith(".") for e in self.extensions):
            raise ValueError(f"extensions must be like ('.txt',), got {self.extensions}")


@dataclass(slots=True)
class IngestResult:
    """Rows for the `documents`, `rejected_files` and `duplicates` tables, sorted by path."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    n_read: int = 0
    n_reused: int = 0

    def outcome_counts(self) -> dict[str, int]:
        """Count files per outcome: documents, duplicates and each reject reason."""
        counts = {"documents": len(self.documents), "duplicates": len(self.duplicates)}
        for row in self.rejected:
            key = f"rejected_{row['reason']}"
            counts[key] = counts.get(key, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class PreviousFiles:
    """Last published rows by source_path, reused for files whose size and mtime are unchanged."""

    documents: Mapping[str, dict[str, Any]]
    rejected: Mapping[str, dict[str, Any]]
    duplicates: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def duplicate(self, entry: Entry) -> dict[str, Any] | None:
        """The previous duplicate row of an unchanged file."""
        row = self.duplicates.get(entry.rel)
        if row is not None and (row["size_bytes"], row["mtime"]) == (entry.size, entry.mtime):
            return row
        return None

    def document(self, entry: Entry) -> dict[str, Any] | None:
        """The previous document row of an unchanged file."""
        row = self.documents.get(entry.rel)
        if row is not None and (row["size_bytes"], row["mtime"]) == (entry.size, entry.mtime):
            return row
        return None

    def reject(self, entry: Entry) -> dict[str, Any] | None:
        """The previous reject row of an unchanged file, if its reason depends on content only."""
        row = self.rejected.get(entry.rel)
        if (
            row is not None
            and row["reason"] in _CONTENT_REASONS
            and (row["size_bytes"], row["mtime"]) == (entry.size, entry.mtime)
        ):
            return row
        return None


def ingest_directory(
    raw_dir: str | os.PathLike[str],
    config: IngestConfig | None = None,
    previous: PreviousFiles | None = None,
    signatures: MutableMapping[str, np.ndarray] | None = None,
) -> IngestResult:
    """Read every file under ``raw_dir`` into memory (see :class:`DirectoryScan`).

    Args:
        raw_dir: Folder of articles, read recursively.
        config: Ingestion settings.
        previous: Rows of the last run (see :class:`DirectoryScan`).
        signatures: Near-duplicate MinHash signatures by doc_id, reused and completed in place
            (see :func:`find_near_duplicates`).

    Returns:
        Documents (first occurrence of each text, in path order), rejected files and duplicates.

    Raises:
        RawDirError: If ``raw_dir`` does not exist or is not a directory.
    """
    result = IngestResult()
    scan = DirectoryScan(raw_dir, config, previous)
    for kind, row in scan:
        {"document": result.documents, "rejected": result.rejected, "duplicate": result.duplicates}[
            kind
        ].append(row)
    result.n_read, result.n_reused = scan.n_read, scan.n_reused
    config = config or IngestConfig()
    near = find_near_duplicates(
        [(d["doc_id"], d["text"]) for d in result.documents],
        config.near_duplicate_threshold,
        signatures,
    )
    for doc in result.documents:
        doc["near_duplicate_of"], doc["near_duplicate_jaccard"] = near.get(
            doc["doc_id"], (None, None)
        )
    result.rejected.sort(key=lambda r: r["source_path"])
    return result


class DirectoryScan:
    """Every file under ``raw_dir`` as ``(kind, row)``, in path order, one file in memory at a time.

    ``kind`` is "document", "rejected" or "duplicate". Near duplicates are not flagged here
    (they need every document; see :func:`find_near_duplicates`).

    Args:
        raw_dir: Folder of articles, read recursively. Hidden files and folders (names starting
            with ".") are ignored: editors and sync tools write them, and they are never articles.
        config: Ingestion settings.
        previous: Rows of the last run; files with the same path, size and mtime are not read
            again. The caller must discard it when the configuration changed.
        workers: Where files are read: here, one at a time as the iteration reaches them (the
            default), or on a cluster's workers, ``read_batch`` files a task, a few tasks ahead
            (the raw dir must be at the same path there).
        read_batch: Files per read task on a cluster.

    Attributes:
        n_files: Files and rejected entries listed (the iteration yields this many outcomes).
        n_read: Files read so far.
        n_reused: Files whose previous row was reused so far.

    Raises:
        RawDirError: If ``raw_dir`` does not exist or is not a directory.
    """

    def __init__(
        self,
        raw_dir: str | os.PathLike[str],
        config: IngestConfig | None = None,
        previous: PreviousFiles | None = None,
        workers: Workers = Workers(),
        read_batch: int = 64,
    ) -> None:
        """Check the raw dir and list it; files are read as the iteration reaches them."""
        root = Path(raw_dir)
        if not root.is_dir():
            raise RawDirError(f"raw dir {str(root)!r} does not exist or is not a directory")
        self.n_read = 0
        self.n_reused = 0
        config = config or IngestConfig()
        root_real = Path(os.path.realpath(root))
        table_rejects: list[Entry | dict[str, Any]] = []
        self._table: dict[str, tuple[ArticleMetadata, str]] = {}
        for name in METADATA_TABLES:
            if (root / name).is_file():
                try:
                    found, problems = read_metadata_table(root / name)
                except MetadataError as err:
                    found, problems = {}, [str(err)]
                for path, meta in found.items():
                    self._table.setdefault(path, (meta, name))
                if problems:  # one row per file, as for every other file; its rows in the detail
                    shown = "; ".join(problems[:20]) + ("; ..." if len(problems) > 20 else "")
                    detail = f"{len(problems)} rows not used: {shown}"
                    table_rejects.append(_reject(name, "bad_metadata", detail, None))
        # Sorted by full relative path, so the first copy of a duplicate is the same on every run.
        items = sorted([*_walk(root, root_real, config), *table_rejects], key=_item_path)
        self.n_files = len(items)
        reads = self._reads(items, config, previous, workers, read_batch)
        self._rows = self._scan(reads, config, previous)

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The files' outcomes (one pass)."""
        return self._rows

    @staticmethod
    def _reads(
        items: list[Entry | dict[str, Any]],
        config: IngestConfig,
        previous: PreviousFiles | None,
        workers: Workers,
        batch: int,
    ) -> Iterator[tuple[Entry | dict[str, Any], dict[str, Any] | Rejected | None]]:
        """Each item with what a worker read of it, or None (read here if needed, or not a file).

        Only files the last run does not know are sent to workers; a known file that turns out
        to need reading (its metadata or its original changed) is read here.
        """
        if not workers.remote:
            for item in items:
                yield item, None
            return

        def unknown(item: Entry | dict[str, Any]) -> bool:
            return isinstance(item, Entry) and not (
                previous
                and (previous.document(item) or previous.reject(item) or previous.duplicate(item))
            )

        chunks = (
            [(item, unknown(item)) for item in items[i : i + batch]]
            for i in range(0, len(items), batch)
        )

        def to_send(chunk: list[tuple[Entry | dict[str, Any], bool]]) -> list[Entry] | None:
            entries = [
                dataclasses.replace(e, path=Path(os.path.abspath(e.path)))
                for e, send in chunk
                if send and isinstance(e, Entry)
            ]
            return entries or None

        task = functools.partial(read_documents, config=config)
        for chunk, part in workers.map(task, chunks, to_send):
            outcomes = iter(part.outcomes() if part is not None else ())
            for item, sent in chunk:
                yield item, next(outcomes) if sent else None

    def _scan(
        self,
        items: Iterator[tuple[Entry | dict[str, Any], dict[str, Any] | Rejected | None]],
        config: IngestConfig,
        previous: PreviousFiles | None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        # First copy of each text, by content hash and by doc_id: (doc_id, source_path) only.
        by_sha: dict[str, tuple[str, str]] = {}
        by_doc: dict[str, str] = {}
        for item, fetched in items:  # fetched: what a worker read, or None
            if isinstance(item, dict):
                yield "rejected", item
                continue
            known_dup = previous.duplicate(item) if previous else None
            if known_dup is not None and known_dup["doc_id"] in by_doc:
                # Still a copy of a document kept this run (originals sort first): no need to read.
                self.n_reused += 1
                yield "duplicate", dict(known_dup)
                continue
            meta, origin, problem = self._metadata(item)
            if problem is not None:
                yield "rejected", problem
            meta_sha = meta.sha256() if meta is not None else None
            known = previous.document(item) if previous else None
            if known is not None and known.get("metadata_sha256") != meta_sha:
                known = None  # the metadata changed: rebuild the row from the text
            known_reject = previous.reject(item) if previous and known is None else None
            if known_reject is not None:
                self.n_reused += 1
                yield "rejected", dict(known_reject)
                continue
            if known is not None:
                doc = {**known, "ingested_from": utf8_safe(os.path.abspath(item.path))}
                self.n_reused += 1
            else:
                try:
                    doc = read_document(item, config) if fetched is None else _settled(fetched)
                except Rejected as rej:
                    yield (
                        "rejected",
                        _reject(item.rel, rej.reason, rej.detail, item.size, item.mtime),
                    )
                    continue
                self.n_read += 1
            original = by_sha.get(doc["content_sha256"])
            if original is None and doc["doc_id"] in by_doc:
                original = (doc["doc_id"], by_doc[doc["doc_id"]])
            if original is not None:
                same_bytes = by_sha.get(doc["content_sha256"]) is not None
                yield (
                    "duplicate",
                    {
                        "source_path": item.rel,
                        "doc_id": original[0],
                        "duplicate_of": original[1],
                        "kind": "identical_bytes" if same_bytes else "identical_text",
                        "size_bytes": doc["size_bytes"],
                        "mtime": doc["mtime"],
                    },
                )
                continue
            by_sha[doc["content_sha256"]] = (doc["doc_id"], item.rel)
            by_doc[doc["doc_id"]] = item.rel
            yield "document", _with_metadata(doc, meta, origin, meta_sha)

    def _metadata(
        self, item: Entry
    ) -> tuple[ArticleMetadata | None, str | None, dict[str, Any] | None]:
        """The article's metadata (sidecar first, then the table), where from, and a reject."""
        if item.sidecar is not None:
            try:
                return read_sidecar(item.sidecar), item.sidecar_rel, None
            except MetadataError as err:
                problem = _reject(item.sidecar_rel, "bad_metadata", str(err), None)
                meta, name = self._table.get(item.rel, (None, None))
                return meta, name, problem
        meta, name = self._table.get(item.rel, (None, None))
        return meta, name, None


def _with_metadata(
    doc: dict[str, Any], meta: ArticleMetadata | None, origin: str | None, sha: str | None
) -> dict[str, Any]:
    """The document row with its metadata: given values win over what the text states."""
    out = {**doc, "metadata_from": origin, "metadata_sha256": sha}
    out["source"] = meta.source if meta else None
    out["url"] = meta.url if meta else None
    out["authors"] = list(meta.authors) if meta else []
    if meta is not None and meta.title:
        out["title"] = meta.title
    if meta is not None and meta.published_date:
        out["published_date"] = meta.published_date
    return out


def _settled(outcome: dict[str, Any] | Rejected) -> dict[str, Any]:
    if isinstance(outcome, Rejected):
        raise outcome
    return outcome


def _walk(root: Path, root_real: Path, config: IngestConfig) -> Iterator[Entry | dict[str, Any]]:
    """Yield files to read, or reject rows, in sorted path order."""
    exts = tuple(e.lower() for e in config.extensions)

    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            rel = relative_path(Path(directory), root)
            yield _reject(rel or ".", "unreadable", f"cannot list directory: {err}", None)
            continue
        subdirs: list[Path] = []
        names = {e.name for e in entries}
        documents = {n for n in names if n.lower().endswith(exts)}
        sidecars = {Path(n).stem + SIDECAR_SUFFIX for n in documents} & names - documents
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            rel = relative_path(path, root)
            if directory == root and entry.name in METADATA_TABLES:
                continue  # read by DirectoryScan, not an article
            if entry.name in sidecars:
                continue  # a sidecar: read with its article
            looks_like_doc = entry.name.lower().endswith(exts)
            if entry.is_symlink():
                real = Path(os.path.realpath(path))
                if not real.is_relative_to(root_real):
                    yield _reject(rel, "outside_root", f"symlink resolves to {real}", None)
                    continue
                if not real.exists():
                    yield _reject(rel, "unreadable", f"broken symlink to {real}", None)
                    continue
                if real.is_dir():
                    continue  # its files are read where they really live, inside the root
            try:
                st = path.stat()
            except OSError as err:
                yield _reject(rel, "unreadable", str(err), None)
                continue
            if stat.S_ISDIR(st.st_mode):
                if looks_like_doc:
                    yield _reject(rel, "not_a_file", "a directory named like a document", None)
                subdirs.append(path)
                continue
            if not looks_like_doc:
                yield _reject(
                    rel,
                    "unsupported_type",
                    f"extension {path.suffix or '(none)'!r} not in {list(config.extensions)}",
                    st.st_size if stat.S_ISREG(st.st_mode) else None,
                    file_mtime(st),
                )
                continue
            if not stat.S_ISREG(st.st_mode):
                yield _reject(
                    rel, "not_a_file", "not a regular file (FIFO, socket or device)", None
                )
                continue
            sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
            if sidecar.name in sidecars:
                side_rel = relative_path(sidecar, root)
                yield Entry(path, rel, st.st_size, file_mtime(st), sidecar, side_rel)
            else:
                yield Entry(path, rel, st.st_size, file_mtime(st))
        # Depth-first in name order: push in reverse so the smallest name is visited first.
        stack.extend(reversed(subdirs))


def _reject(
    rel: str, reason: str, detail: str, size: int | None, mtime: dt.datetime | None = None
) -> dict[str, Any]:
    return {
        "source_path": utf8_safe(rel),
        "reason": reason,
        "detail": utf8_safe(detail),
        "size_bytes": size,
        "mtime": mtime,
    }


def _item_path(item: Entry | dict[str, Any]) -> str:
    return item["source_path"] if isinstance(item, dict) else item.rel
