"""Read a folder of raw articles into documents, rejects and duplicates, losing nothing.

Every regular file under the raw dir ends up in exactly one of three places: a document, a
rejected file (with a short reason code and a detail), or a duplicate of a document. Nothing here
raises on a bad file; only an unusable raw dir itself is an error.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import logging
import os
import re
import stat
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from pipeline.ids import sha256_hex, stable_id
from pipeline.metadata import (
    METADATA_TABLES,
    SIDECAR_SUFFIX,
    ArticleMetadata,
    MetadataError,
    read_metadata_table,
    read_sidecar,
)
from pipeline.segment import classify_segment

__all__ = [
    "REJECT_REASONS",
    "IngestConfig",
    "IngestResult",
    "PreviousFiles",
    "RawDirError",
    "decode_bytes",
    "Fingerprint",
    "extract_metadata",
    "find_near_duplicates",
    "fingerprint_directory",
    "ingest_directory",
    "DirectoryScan",
    "minhash_signature",
    "near_duplicates",
    "normalize_text",
]

log = logging.getLogger(__name__)

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

_BINARY_SIGNATURES: Final = (
    (b"\x1f\x8b", "gzip compressed data"),
    (b"PK\x03\x04", "zip archive"),
    (b"%PDF", "PDF document"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"BZh", "bzip2 compressed data"),
    (b"\xfd7zXZ", "xz compressed data"),
    (b"7z\xbc\xaf", "7-zip archive"),
    (b"\x7fELF", "ELF executable"),
    (b"\x28\xb5\x2f\xfd", "zstd compressed data"),
)
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
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


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Entry:
    path: Path
    rel: str
    size: int
    mtime: dt.datetime
    sidecar: Path | None = None  # <name>.json beside it (pipeline.metadata)
    sidecar_rel: str = ""


@dataclass(frozen=True, slots=True)
class PreviousFiles:
    """Last published rows by source_path, reused for files whose size and mtime are unchanged."""

    documents: Mapping[str, dict[str, Any]]
    rejected: Mapping[str, dict[str, Any]]
    duplicates: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def duplicate(self, entry: _Entry) -> dict[str, Any] | None:
        """The previous duplicate row of an unchanged file."""
        row = self.duplicates.get(entry.rel)
        if row is not None and (row["size_bytes"], row["mtime"]) == (entry.size, entry.mtime):
            return row
        return None

    def document(self, entry: _Entry) -> dict[str, Any] | None:
        """The previous document row of an unchanged file."""
        row = self.documents.get(entry.rel)
        if row is not None and (row["size_bytes"], row["mtime"]) == (entry.size, entry.mtime):
            return row
        return None

    def reject(self, entry: _Entry) -> dict[str, Any] | None:
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
    ) -> None:
        """Check the raw dir and list it; files are read as the iteration reaches them."""
        root = Path(raw_dir)
        if not root.is_dir():
            raise RawDirError(f"raw dir {str(root)!r} does not exist or is not a directory")
        self.n_read = 0
        self.n_reused = 0
        config = config or IngestConfig()
        root_real = Path(os.path.realpath(root))
        table_rejects: list[_Entry | dict[str, Any]] = []
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
        self._rows = self._scan(items, config, previous)

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The files' outcomes (one pass)."""
        return self._rows

    def _scan(
        self,
        items: list[_Entry | dict[str, Any]],
        config: IngestConfig,
        previous: PreviousFiles | None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        # First copy of each text, by content hash and by doc_id: (doc_id, source_path) only.
        by_sha: dict[str, tuple[str, str]] = {}
        by_doc: dict[str, str] = {}
        for item in items:
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
                    doc = _read_document(item, config)
                except _Rejected as rej:
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
        self, item: _Entry
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


def _walk(root: Path, root_real: Path, config: IngestConfig) -> Iterator[_Entry | dict[str, Any]]:
    """Yield files to read, or reject rows, in sorted path order."""
    exts = tuple(e.lower() for e in config.extensions)

    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as err:
            rel = _rel(Path(directory), root)
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
            rel = _rel(path, root)
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
                    _mtime(st),
                )
                continue
            if not stat.S_ISREG(st.st_mode):
                yield _reject(
                    rel, "not_a_file", "not a regular file (FIFO, socket or device)", None
                )
                continue
            sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
            if sidecar.name in sidecars:
                yield _Entry(path, rel, st.st_size, _mtime(st), sidecar, _rel(sidecar, root))
            else:
                yield _Entry(path, rel, st.st_size, _mtime(st))
        # Depth-first in name order: push in reverse so the smallest name is visited first.
        stack.extend(reversed(subdirs))


def _read_document(entry: _Entry, config: IngestConfig) -> dict[str, Any]:
    data, st = _read_stable(entry.path, config)
    encoding, raw_text = decode_bytes(data, config.legacy_encodings)
    text = normalize_text(raw_text)
    if not text.strip():
        raise _Rejected("empty", "no text after normalisation" if data else "0-byte file")
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
        "mtime": _mtime(st),
        "size_bytes": st.st_size,
        "n_claims": 0,
    }


def _read_stable(path: Path, config: IngestConfig) -> tuple[bytes, os.stat_result]:
    """Read a file whose size and mtime do not change during the read."""
    for attempt in range(config.read_attempts):
        try:
            before = path.stat()
            if before.st_size > config.max_bytes:
                raise _Rejected(
                    "too_large", f"{before.st_size} bytes > limit of {config.max_bytes} bytes"
                )
            with open(path, "rb") as fh:
                data = fh.read(config.max_bytes + 1)
            after = path.stat()
        except _Rejected:
            raise
        except OSError as err:
            raise _Rejected("unreadable", f"{type(err).__name__}: {err}") from err
        if len(data) > config.max_bytes:
            raise _Rejected("too_large", f"grew past the limit of {config.max_bytes} bytes")
        unchanged = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
        if unchanged and len(data) == after.st_size:
            return data, after
        time.sleep(0.05 * (attempt + 1))
    raise _Rejected(
        "unstable", f"changed while being read ({config.read_attempts} attempts); retried next run"
    )


def decode_bytes(
    data: bytes, legacy_encodings: tuple[str, ...] = ("cp1252", "latin_1")
) -> tuple[str, str]:
    """Decode article bytes, refusing rather than mangling.

    Order: byte-order mark (UTF-8/16/32), strict UTF-8, then a detector (charset-normalizer)
    restricted to ``legacy_encodings``. Files mixing UTF-8 lines with legacy lines are decoded
    line by line, each line with the encoding it is valid in.

    Returns:
        ``(encoding, text)``.

    Raises:
        _Rejected: ``binary`` or ``undecodable``.
    """
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise _Rejected("binary", what)
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return name, data[len(bom) :].decode(name.removesuffix("-sig"))
            except UnicodeDecodeError as err:
                raise _Rejected("undecodable", f"invalid {name} after its BOM: {err}") from err
    nuls = data.count(0)
    if nuls:
        utf16 = _utf16_without_bom(data)
        if utf16 is not None:
            return utf16[0], _refuse_control_heavy(utf16[1])
        raise _Rejected("binary", f"{nuls} NUL bytes and no UTF-16/32 BOM")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", _refuse_control_heavy(text)
    return _decode_legacy(data, legacy_encodings)


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """``(encoding, text)`` if ``data`` is UTF-16 text saved without a byte-order mark.

    Text in a Latin script has a NUL in every other byte (the high byte of each code unit): in
    the odd positions for little-endian, the even ones for big-endian, and almost none on the
    other side. Binary data does not keep that pattern, nor decode without NUL characters.
    """
    n = len(data) // 2
    if n < 8 or len(data) % 2:
        return None
    even, odd = data[0::2].count(0) / n, data[1::2].count(0) / n
    if odd > 0.3 and even < 0.01:
        encoding = "utf-16-le"
    elif even > 0.3 and odd < 0.01:
        encoding = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else (encoding, text)


def _decode_legacy(data: bytes, legacy: tuple[str, ...]) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    lines = data.split(b"\n")
    utf8_lines: dict[int, str] = {}
    bad: list[bytes] = []
    for i, line in enumerate(lines):
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(line)
        else:
            if not line.isascii():
                utf8_lines[i] = decoded
    best = from_bytes(b"\n".join(bad), cp_isolation=list(legacy)).best()
    if best is None:
        raise _Rejected(
            "undecodable", f"not UTF-8 and no accepted legacy encoding fits ({', '.join(legacy)})"
        )
    enc = codecs.lookup(best.encoding).name
    try:
        if not utf8_lines:
            return enc, _refuse_control_heavy(data.decode(enc))
        parts = [utf8_lines.get(i) or line.decode(enc) for i, line in enumerate(lines)]
    except UnicodeDecodeError as err:
        raise _Rejected("undecodable", f"detected {enc} but it does not decode: {err}") from err
    return f"utf-8+{enc}", _refuse_control_heavy("\n".join(parts))


def _refuse_control_heavy(text: str) -> str:
    # Text in a wrong single-byte codec or a binary blob decodes "successfully" but is full of
    # control characters; real articles have almost none.
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, 0.05 * len(text)):
        raise _Rejected("binary", f"{controls} control characters in {len(text)}")
    return text


_DROP: Final = {
    **{c: None for c in range(0x20) if chr(c) not in "\n\t\r\x0b\x0c"},
    0x7F: None,
    **{c: None for c in range(0x80, 0xA0) if c != 0x85},
    0x200B: None,  # zero-width space
    0x200C: None,  # zero-width non-joiner
    0x200D: None,  # zero-width joiner
    0x2060: None,  # word joiner
    0xFEFF: None,  # BOM / zero-width no-break space
    0x00AD: None,  # soft hyphen
    # Bidirectional marks, embeddings, overrides and isolates: they make a claim display other
    # than its bytes read ("Trojan Source"), and one invisible mark defeats duplicate detection.
    0x061C: None,
    0x200E: None,
    0x200F: None,
    **{c: None for c in range(0x202A, 0x202F)},
    **{c: None for c in range(0x2066, 0x206A)},
    0x0B: "\n",
    0x0C: "\n",
    0x85: "\n",
    0x2028: "\n",
    0x2029: "\n",
}


def normalize_text(text: str) -> str:
    r"""Normalise text so that offsets into the result are the reference for all tables.

    Newlines become ``\\n``, the text is Unicode NFC, zero-width, bidirectional-control and
    control characters (other than newline and tab) are removed, and trailing whitespace is
    dropped.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text).translate(_DROP)
    return text.rstrip()


_AGENCY_DATELINE: Final = re.compile(
    r"^\s*([A-Z][A-Za-z .,'’-]{1,40}?)\s*\((Reuters|AP|AFP|Bloomberg|TASS|Xinhua|Interfax|UPI)\)"
    r"\s*[-–—]"
)
_MONTHS: Final = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH_RE: Final = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS: Final = (
    (re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b"), ("y", "m", "d")),
    (re.compile(rf"\b(\d{{1,2}})\s+({_MONTH_RE})\.?,?\s+((?:19|20)\d\d)\b", re.I), ("d", "M", "y")),
    (
        re.compile(
            rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+((?:19|20)\d\d)\b", re.I
        ),
        ("M", "d", "y"),
    ),
)


def extract_metadata(text: str) -> dict[str, Any]:
    """Title, headings, source attribution and stated publication date of a normalised text.

    Returns:
        A dict with ``title`` (first line when it is a headline, else None), ``headings``
        (other heading lines, in order), ``source_attribution`` (source/byline lines and agency
        datelines joined by newlines, or None) and ``published_date`` (a ``date`` or None).
    """
    title: str | None = None
    headings: list[str] = []
    attributions: list[str] = []
    first_line, first_body = True, True
    for raw_line in text.split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        kind = classify_segment(line, is_whole_line=True)
        if kind == "heading":
            if first_line:
                title = line
            else:
                headings.append(line)
        elif kind == "attribution":
            attributions.append(line)
        else:
            if first_body and (m := _AGENCY_DATELINE.match(line)):
                attributions.append(f"{m.group(2)} ({m.group(1).strip()})")
            first_body = False
        first_line = False
    return {
        "title": title,
        "headings": headings,
        "source_attribution": "\n".join(attributions) or None,
        "published_date": find_published_date(text),
    }


def find_published_date(text: str, window: int = 1500) -> dt.date | None:
    """Return the first valid date stated near the start of the text (or in its last lines)."""
    regions = (text[:window], text[-400:])
    for region in regions:
        for pattern, order in _DATE_PATTERNS:
            for m in pattern.finditer(region):
                parts = dict(zip(order, m.groups(), strict=True))
                month = int(parts["m"]) if "m" in parts else _MONTHS[parts["M"].lower()]
                try:
                    return dt.date(int(parts["y"]), month, int(parts["d"]))
                except ValueError:
                    continue
    return None


# --- near duplicates -----------------------------------------------------------------------------

_WORD: Final = re.compile(r"\w+")
_N_PERM: Final = 64
_BANDS: Final = 16
_VERIFY_BLOCK: Final = 256  # candidate pairs verified together (at most 512 shingle sets held)
_MERSENNE: Final = np.uint64((1 << 61) - 1)
_RNG: Final = np.random.default_rng(20240611)
_PERM_A: Final = _RNG.integers(1, (1 << 61) - 1, size=_N_PERM, dtype=np.uint64)
_PERM_B: Final = _RNG.integers(0, (1 << 61) - 1, size=_N_PERM, dtype=np.uint64)


def _shingles(text: str, k: int = 5) -> set[int]:
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {zlib.crc32(" ".join(words).encode())} if words else set()
    return {zlib.crc32(" ".join(words[i : i + k]).encode()) for i in range(len(words) - k + 1)}


def _minhash(shingles: set[int]) -> np.ndarray:
    x = np.fromiter(shingles, dtype=np.uint64, count=len(shingles))[:, None]
    # (a*x + b) mod p with 32-bit x keeps the product below 2**64 after masking a to 31 bits.
    a = _PERM_A & np.uint64(0x7FFFFFFF)
    hashed = (x * a + _PERM_B) % _MERSENNE
    result: np.ndarray = hashed.min(axis=0)
    return result


def minhash_signature(text: str) -> np.ndarray | None:
    """MinHash signature of a text's word 5-shingles; None when it has no words."""
    sh = _shingles(text)
    return _minhash(sh) if sh else None


def near_duplicates(
    doc_ids: Sequence[str],
    signatures: Mapping[str, np.ndarray],
    text_of: Callable[[list[int]], list[str]],
    threshold: float = 0.9,
) -> dict[str, tuple[str, float]]:
    """Flag documents that nearly copy an earlier one, from their signatures.

    MinHash (64 permutations, 16 bands of 4 rows) proposes candidate pairs; each candidate's
    exact word 5-shingle Jaccard is then checked against ``threshold``. Only candidates' texts
    are fetched, so the texts need not be in memory.

    Args:
        doc_ids: In processing order; the earlier document is the original.
        signatures: By doc_id (a document without one has no words and matches nothing).
        text_of: Texts of documents given by position in ``doc_ids``.
        threshold: Minimum Jaccard similarity.

    Returns:
        For each near-duplicate doc_id, the doc_id it resembles most and the Jaccard score.
    """
    buckets: dict[tuple[int, bytes], list[int]] = {}
    candidates: dict[int, set[int]] = {}
    rows = _N_PERM // _BANDS
    for i, doc_id in enumerate(doc_ids):
        sig = signatures.get(doc_id)
        if sig is None:
            continue
        for band in range(_BANDS):
            key = (band, sig[band * rows : (band + 1) * rows].tobytes())
            earlier = buckets.setdefault(key, [])
            if earlier:
                candidates.setdefault(i, set()).update(earlier)
            earlier.append(i)
    best: dict[int, tuple[float, int]] = {}
    pairs = [(i, j) for i in sorted(candidates) for j in sorted(candidates[i])]
    # A block of pairs at a time: shingle sets cost ~25 kB a document, and a corpus of
    # reprinted wire stories can make every document a candidate of many others.
    for start in range(0, len(pairs), _VERIFY_BLOCK):
        block = pairs[start : start + _VERIFY_BLOCK]
        involved = sorted({i for i, _ in block} | {j for _, j in block})
        shingles = dict(zip(involved, map(_shingles, text_of(involved)), strict=True))
        for i, j in block:
            a, b = shingles[i], shingles[j]
            jac = len(a & b) / len(a | b)
            if jac >= threshold and (i not in best or jac > best[i][0]):
                best[i] = (jac, j)  # ties keep the earliest original: pairs come in j order
    found = {doc_ids[i]: (doc_ids[j], round(jac, 4)) for i, (jac, j) in sorted(best.items())}
    return found


def find_near_duplicates(
    docs: list[tuple[str, str]],
    threshold: float = 0.9,
    signatures: MutableMapping[str, np.ndarray] | None = None,
) -> Mapping[str, tuple[str, float]]:
    """:func:`near_duplicates` of documents in memory.

    Args:
        docs: ``(doc_id, text)`` in processing order; the earlier document is the original.
        threshold: Minimum Jaccard similarity.
        signatures: MinHash signatures by doc_id (a doc_id is a hash of the text); missing ones
            are computed and added, so a night with 20 new articles shingles only those.
    """
    sigs = signatures if signatures is not None else {}
    for doc_id, text in docs:
        if doc_id not in sigs:
            sig = minhash_signature(text)
            if sig is not None:
                sigs[doc_id] = sig
    return near_duplicates(
        [d for d, _ in docs], sigs, lambda idx: [docs[i][1] for i in idx], threshold
    )


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


def _mtime(st: os.stat_result) -> dt.datetime:
    # Microseconds, as stored in Parquet: the unit in which unchanged files are recognised.
    return _EPOCH + dt.timedelta(microseconds=st.st_mtime_ns // 1000)


def _item_path(item: _Entry | dict[str, Any]) -> str:
    return item["source_path"] if isinstance(item, dict) else item.rel


def _rel(path: Path, root: Path) -> str:
    return relative_path(path, root)


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` (not hidden, symlinked folders not followed), like ``os.walk``.

    Iterative: ``os.walk`` recurses once per level and raises RecursionError in folders nested
    about a thousand deep.
    """
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.is_symlink():
                    stack.append(Path(entry.path))
                continue
            yield Path(entry.path)


def relative_path(path: Path, root: Path) -> str:
    r"""``path`` relative to ``root``, as the tables store it: always valid UTF-8.

    A name that is not valid UTF-8 (``caf\xe9.txt`` from a Windows zip) reaches Python with
    surrogate escapes, which Parquet cannot store; its undecodable bytes are written as
    ``\xNN`` instead (the file is still read from its real name).
    """
    return utf8_safe(path.relative_to(root).as_posix())


def utf8_safe(name: str) -> str:
    r"""A path or message that Parquet can store: undecodable bytes become ``\xNN``."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A cheap summary of a raw dir: file count and a digest of every (path, size, mtime)."""

    n_files: int
    digest: str


def fingerprint_directory(raw_dir: str | os.PathLike[str]) -> Fingerprint:
    """Fingerprint the raw dir with ``stat`` only (no file is opened), for the new-file sensor.

    Any added, removed, renamed or rewritten file changes the digest.
    """
    root = Path(raw_dir)
    entries: list[str] = []
    for path in walk_files(root):
        try:
            st = path.lstat()
        except OSError:
            continue
        entries.append(f"{_rel(path, root)}\x1f{st.st_size}\x1f{st.st_mtime_ns}")
    entries.sort()
    return Fingerprint(len(entries), sha256_hex("\n".join(entries)))
