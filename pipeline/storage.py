"""Atomic Parquet files and strict reading.

A file is written as a temporary file in its destination directory and renamed over the old
one (``os.replace`` is atomic on POSIX within one file system), so a reader sees either the
previous file or the new one, never a partial file. How a run's tables are published together
is :mod:`pipeline.snapshots`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "BATCH_ROWS",
    "MissingTableError",
    "ParquetSink",
    "TableFile",
    "read_table",
    "remove_stale_temporaries",
    "fsync_dir",
    "table_path",
    "write_table",
]

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
# Row groups sized for analysts' engines (DuckDB, Spark) and for bounded memory when streaming.
ROW_GROUP_SIZE = 50_000
# Rows per record batch when a step streams a table: a few MB, whatever the corpus size.
BATCH_ROWS = 8192


class MissingTableError(FileNotFoundError):
    """Raised when an upstream table has not been materialized yet."""


def table_path(base_dir: str | os.PathLike[str], name: str) -> Path:
    """Return ``<base_dir>/<name>.parquet``."""
    return Path(base_dir) / f"{name}.parquet"


def write_table(
    table: pa.Table,
    path: str | os.PathLike[str],
    row_group_size: int = ROW_GROUP_SIZE,
    compress: bool = True,
) -> Path:
    """Write ``table`` to ``path`` atomically and return the path.

    Args:
        table: The table; its schema is written as is (callers cast to the contract schema).
        path: Destination file; its directory is created if needed.
        row_group_size: Rows per row group (the unit a reader can fetch alone).
        compress: zstd (vectors excepted); off for work files read back once.
    """
    with ParquetSink(path, table.schema, row_group_size, compress) as sink:
        sink.write(table)
    return Path(path)


class ParquetSink(contextlib.AbstractContextManager["ParquetSink"]):
    """Stream record batches into a Parquet file that appears atomically on success.

    On an exception inside the ``with`` block the temporary file is removed and the previous
    file (if any) is untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: pa.Schema,
        row_group_size: int = ROW_GROUP_SIZE,
        compress: bool = True,
    ) -> None:
        """Store the destination and schema; the file is opened on ``__enter__``.

        ``compress=False`` suits work files read back once by the same run.
        """
        self.path = Path(path)
        self.schema = schema
        self.row_group_size = row_group_size
        self.compress = compress
        self.num_rows = 0
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> ParquetSink:
        """Open a temporary file next to the destination."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{self.path.name}.", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = pq.ParquetWriter(
            self._tmp,
            self.schema,
            compression=_compression(self.schema) if self.compress else "none",
            write_statistics=True,
        )
        return self

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        """Append rows; they must match the sink's schema."""
        assert self._writer is not None, "use ParquetSink as a context manager"
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        if not table.schema.equals(self.schema):
            table = table.cast(self.schema)
        self._writer.write_table(table, row_group_size=self.row_group_size)
        self.num_rows += table.num_rows

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        """Publish on success; discard the temporary file on failure."""
        assert self._writer is not None and self._tmp is not None
        try:
            self._writer.close()
            if exc_type is None:
                with open(self._tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                # mkstemp creates 0600 files; published tables are for every analyst to read.
                os.chmod(self._tmp, 0o644)
                os.replace(self._tmp, self.path)
                fsync_dir(self.path.parent)
                log.debug("published %s (%d rows)", self.path, self.num_rows)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()


@dataclass(frozen=True, slots=True)
class TableFile:
    """A table on disk, read in record batches instead of all at once.

    Steps that stream (the corpus and the embeddings) hand their output to the IO manager as a
    finished file, and receive their inputs this way: memory then holds one batch, not the
    table.
    """

    path: Path

    @property
    def num_rows(self) -> int:
        """Rows, from the footer."""
        return int(pq.ParquetFile(self.path).metadata.num_rows)

    @property
    def schema(self) -> pa.Schema:
        """Arrow schema, from the footer."""
        return pq.read_schema(self.path)

    def batches(
        self, columns: list[str] | None = None, batch_size: int = BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """The rows in file order, ``batch_size`` at a time."""
        # pre_buffer (pyarrow's default) fetches every row group's column chunks up front:
        # the whole file in memory, the opposite of streaming. buffer_size instead: each
        # column chunk is read through a 1 MiB buffer, not one read call per page.
        file = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=READ_BUFFER)
        yield from file.iter_batches(batch_size=batch_size, columns=columns)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The whole table (or some columns): for small tables and for tests."""
        return pq.read_table(self.path, columns=columns)

    def take(self, rows: Sequence[int], columns: list[str] | None = None) -> pa.Table:
        """The rows at these positions, in this order, reading only the row groups holding them."""
        file = pq.ParquetFile(self.path)
        sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        wanted = np.asarray(rows, dtype=np.int64)
        group_of = np.searchsorted(starts, wanted, side="right") - 1
        groups = np.unique(group_of)
        # Position of each wanted row within the concatenation of the groups read.
        read_start = np.concatenate([[0], np.cumsum(starts[groups + 1] - starts[groups])])
        at = wanted - starts[group_of] + read_start[np.searchsorted(groups, group_of)]
        table = file.read_row_groups(groups.tolist(), columns=columns)
        return table.take(pa.array(at, type=pa.int64()))


def _compression(schema: pa.Schema) -> dict[str, str]:
    """Codec per column: zstd, except float vectors, which it barely shrinks but slows to read."""
    codecs = {}
    for field in schema:
        vector = pa.types.is_fixed_size_list(field.type) and pa.types.is_floating(
            field.type.value_type
        )
        codecs[field.name] = "none" if vector else "zstd"
    return codecs


def read_table(
    path: str | os.PathLike[str], schema: pa.Schema | None = None, columns: list[str] | None = None
) -> pa.Table:
    """Read a published table, raising :class:`MissingTableError` if it does not exist.

    Args:
        path: The ``.parquet`` file.
        schema: If given, the table is cast to it (and must contain its columns).
        columns: Optional subset of columns to read.
    """
    p = Path(path)
    if not p.exists():
        raise MissingTableError(
            f"table {p.name!r} not found at {p}: materialize its asset first "
            "(for example with `make run`)"
        )
    table = pq.read_table(p, columns=columns)
    if schema is not None and columns is None:
        table = table.select(schema.names).cast(schema)
    return table


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files left by killed runs, in ``directory`` and below; return them.

    Only safe while holding the run lock: a live run's temporaries look the same.
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    stale = sorted(d.rglob(f"{TMP_PREFIX}*"))
    for p in stale:
        if p.is_dir() and not p.is_symlink():  # e.g. a killed model export's work dir
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale


def fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` durable across a power loss, not just file contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


READ_BUFFER = 1 << 20  # bytes; see TableFile.batches
