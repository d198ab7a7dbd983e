"""Last night's corpus tables, read back only as far as a night needs them.

Unchanged files reuse their document rows (fetched by path, in the order files are scanned);
documents already split reuse their segments and claims (read in doc_id order, as the corpus
stage asks for them). See :mod:`pipeline.corpus`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from pipeline.ingest import PreviousFiles
from pipeline.storage import TableFile

__all__ = ["CORPUS_TABLES", "STATE_KEY", "PreviousCorpus", "RowsByDoc"]

CORPUS_TABLES: Final = ("documents", "rejected_files", "duplicates", "segments", "claims")
STATE_KEY: Final = b"docthemes.state_key"


@dataclass(frozen=True, slots=True)
class PreviousCorpus:
    """The last published corpus tables, read back only as far as the run needs them.

    Document rows are fetched one at a time in path order (the order files are scanned);
    segments and claims are read in doc_id order, as the merge asks for them.
    """

    files: PreviousFiles
    segments: TableFile
    claims: TableFile
    split_ids: frozenset[str]

    @classmethod
    def from_files(
        cls, files: Mapping[str, TableFile | None], key: str, batch_size: int = 512
    ) -> PreviousCorpus | None:
        """Index previous tables; None when missing or produced under another state key.

        Args:
            files: The published corpus tables by name.
            key: This run's state key.
            batch_size: Document rows read at a time when fetching them by path.
        """
        docs = files.get("documents")
        if docs is None or any(files.get(n) is None for n in CORPUS_TABLES):
            return None
        if (docs.schema.metadata or {}).get(STATE_KEY) != key.encode():
            return None
        rejected = files["rejected_files"].read().to_pylist()  # type: ignore[union-attr]
        duplicates = files["duplicates"].read().to_pylist()  # type: ignore[union-attr]
        segments: TableFile = files["segments"]  # type: ignore[assignment]
        split = segments.read(["doc_id"]).column("doc_id").unique().to_pylist()
        return cls(
            PreviousFiles(
                _RowsByPath(docs, batch_size),
                {r["source_path"]: r for r in rejected},
                {r["source_path"]: r for r in duplicates},
            ),
            segments,
            files["claims"],  # type: ignore[arg-type]
            frozenset(split),
        )


class _RowsByPath(Mapping[str, dict[str, Any]]):
    """Rows of a table sorted by source_path, by path, fetched through a forward cursor."""

    def __init__(self, file: TableFile, batch_size: int) -> None:
        paths = file.read(["source_path"]).column("source_path").to_pylist()
        self._batch_size = batch_size
        self._index = {p: i for i, p in enumerate(paths)}
        self._file = file
        self._batches: Iterator[pa.RecordBatch] = iter(())
        self._rows: list[dict[str, Any]] = []
        self._start = 0

    def __getitem__(self, path: str) -> dict[str, Any]:
        i = self._index[path]
        if i < self._start or not self._rows:  # asked out of order (or first): start over
            self._batches, self._start = self._file.batches(batch_size=self._batch_size), 0
            self._rows = next(self._batches).to_pylist()
        while i >= self._start + len(self._rows):
            self._start += len(self._rows)
            # A whole batch at once: nearly every row is asked for, in order.
            self._rows = next(self._batches).to_pylist()
        return self._rows[i - self._start]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class RowsByDoc:
    """Rows of a table sorted by doc_id, taken a document at a time in increasing doc_id."""

    def __init__(self, file: TableFile | None, schema: pa.Schema) -> None:
        """Read ``file`` (None: no rows) as ``schema``."""
        self._schema = schema
        self._batches = file.batches() if file is not None else iter(())
        self._table = schema.empty_table()
        self._ids: list[str] = []
        self._pos = 0

    def take(self, doc_id: str) -> pa.Table:
        """The rows of ``doc_id``; rows of smaller doc_ids are skipped for good."""
        parts = []
        while True:
            if self._pos >= len(self._ids):
                batch = next(self._batches, None)
                if batch is None:
                    break
                ids = batch.column("doc_id").to_pylist()
                # A table out of order would make rows be skipped without a trace.
                if ids != sorted(ids) or (self._ids and ids and ids[0] < self._ids[-1]):
                    raise ValueError(
                        "last night's segments or claims are not sorted by doc_id; rerun with "
                        "settings.full_refresh: true"
                    )
                self._table = pa.Table.from_batches([batch]).cast(self._schema)
                self._ids, self._pos = ids, 0
                continue
            lo = bisect.bisect_left(self._ids, doc_id, self._pos)
            hi = bisect.bisect_right(self._ids, doc_id, lo)
            if hi > lo:
                parts.append(self._table.slice(lo, hi - lo))
            self._pos = hi
            if hi < len(self._ids):  # the next row belongs to a later document
                break
        return pa.concat_tables(parts) if parts else self._schema.empty_table()
