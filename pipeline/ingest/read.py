"""Reading one file of the raw dir into a document row, here or as a task on a worker.

A cluster's workers read batches of files (:func:`read_documents`) on the shared raw dir and
send back Arrow tables; the driver keeps the order and decides duplicates, as for a local read.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

from pipeline.ids import sha256_hex, stable_id
from pipeline.ingest.decode import Rejected, decode_bytes, normalize_text
from pipeline.ingest.paths import utf8_safe
from pipeline.ingest.stated import extract_metadata
from pipeline.schemas import SCHEMAS

if TYPE_CHECKING:
    from pipeline.ingest.scan import IngestConfig

__all__ = ["Entry", "ReadPart", "file_mtime", "read_document", "read_documents"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """A file of the raw dir to read: where it is, its relative path, size and mtime."""

    path: Path
    rel: str
    size: int
    mtime: dt.datetime
    sidecar: Path | None = None  # <name>.json beside it (pipeline.metadata)
    sidecar_rel: str = ""


def read_document(entry: Entry, config: IngestConfig) -> dict[str, Any]:
    """The document row of one file.

    Raises:
        Rejected: If the file cannot be a document (the reason and a detail).
    """
    data, st = _read_stable(entry.path, config)
    encoding, raw_text = decode_bytes(data, config.legacy_encodings)
    text = normalize_text(raw_text)
    if not text.strip():
        raise Rejected("empty", "no text after normalisation" if data else "0-byte file")
    meta = extract_metadata(text)
    return {
        "doc_id": stable_id("doc", text),
        "source_path": entry.rel,
        "text": text,
        "title": meta["title"],
        "encoding": encoding,
        "headings": meta["headings"],
        "source_attribution": meta["source_attribution"],
        "published_date": meta["published_date"],
        "n_chars": len(text),
        "content_sha256": sha256_hex(data),
        "ingested_from": utf8_safe(os.path.abspath(entry.path)),
        "mtime": file_mtime(st),
        "size_bytes": st.st_size,
        "n_claims": 0,
    }


def _read_stable(path: Path, config: IngestConfig) -> tuple[bytes, os.stat_result]:
    """Read a file whose size and mtime do not change during the read."""
    for attempt in range(config.read_attempts):
        try:
            before = path.stat()
            if before.st_size > config.max_bytes:
                raise Rejected(
                    "too_large", f"{before.st_size} bytes > limit of {config.max_bytes} bytes"
                )
            with open(path, "rb") as fh:
                data = fh.read(config.max_bytes + 1)
            after = path.stat()
        except Rejected:
            raise
        except OSError as err:
            raise Rejected("unreadable", f"{type(err).__name__}: {err}") from err
        if len(data) > config.max_bytes:
            raise Rejected("too_large", f"grew past the limit of {config.max_bytes} bytes")
        unchanged = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
        if unchanged and len(data) == after.st_size:
            return data, after
        time.sleep(0.05 * (attempt + 1))
    raise Rejected(
        "unstable", f"changed while being read ({config.read_attempts} attempts); retried next run"
    )


def file_mtime(st: os.stat_result) -> dt.datetime:
    """The file's mtime, in UTC."""
    # Microseconds, as stored in Parquet: the unit in which unchanged files are recognised.
    return _EPOCH + dt.timedelta(microseconds=st.st_mtime_ns // 1000)


# The columns a read fills in; the rest of a document row comes from the scan and the corpus.
_READ_COLUMNS: Final = (
    "doc_id",
    "source_path",
    "text",
    "title",
    "encoding",
    "headings",
    "source_attribution",
    "published_date",
    "n_chars",
    "content_sha256",
    "ingested_from",
    "mtime",
    "size_bytes",
    "n_claims",
)
_READ_SCHEMA: Final = pa.schema([SCHEMAS["documents"].field(name) for name in _READ_COLUMNS])


@dataclass(frozen=True, slots=True)
class ReadPart:
    """A batch of files read: the documents as Arrow, and the rejected ones by position."""

    documents: pa.Table
    rejected: dict[int, tuple[str, str]]  # position in the batch -> (reason, detail)
    n_entries: int

    def outcomes(self) -> list[dict[str, Any] | Rejected]:
        """Each entry's document row, or why it was rejected, in the batch's order."""
        rows = iter(self.documents.to_pylist())
        return [
            Rejected(*self.rejected[i]) if i in self.rejected else next(rows)
            for i in range(self.n_entries)
        ]


def read_documents(entries: list[Entry], config: IngestConfig) -> ReadPart:
    """Read a batch of files (absolute paths): one data-parallel task."""
    rows: list[dict[str, Any]] = []
    rejected: dict[int, tuple[str, str]] = {}
    for i, entry in enumerate(entries):
        try:
            rows.append(read_document(entry, config))
        except Rejected as rej:
            rejected[i] = (rej.reason, rej.detail)
    documents = pa.Table.from_pylist(rows, schema=_READ_SCHEMA)
    return ReadPart(documents, rejected, len(entries))
