"""The embedding cache: vectors keyed by the SHA-256 of their text, one folder per model.

Texts embedded on an earlier night are read back, never embedded again; a run killed while
embedding keeps every finished chunk.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.parallel import Workers
from pipeline.storage import ParquetSink, TableFile, write_table

_CACHE_SCHEMA_FIELDS: Final = ("text_sha256", "embedding")
_CACHE_ROW_GROUP: Final = 4096
_KEY_DTYPE: Final = "S64"  # a hex SHA-256 as fixed-width bytes: 64 B a key, no Python object


class EmbeddingCache:
    """Embeddings already computed, keyed by the SHA-256 of the text, for one model.

    Stored as Parquet shards under ``<directory>/<model key>/part-<n>.parquet``; each shard is
    published atomically once its chunk is embedded, so a run killed mid-embedding keeps every
    finished chunk and the next run embeds only the rest.
    """

    def __init__(self, directory: str | os.PathLike[str], model_key: str) -> None:
        """Store the location; nothing is read until :meth:`load`."""
        self.directory = Path(directory) / model_key

    def load(self, keys: set[str] | None = None) -> tuple[dict[str, int], np.ndarray]:
        """Cached vectors: key -> row index, and the ``(n, dim)`` matrix.

        Args:
            keys: Only these keys (the theme step needs a few dozen seed phrases out of tens of
                thousands of vectors); ``None`` loads everything.
        """
        index: dict[str, int] = {}
        blocks: list[np.ndarray] = []
        n = 0
        for shard in self.shards():
            shard_keys = pq.read_table(shard, columns=["text_sha256"]).column(0).to_pylist()
            rows = [
                i
                for i, key in enumerate(shard_keys)
                if key not in index and (keys is None or key in keys)
            ]
            if not rows:
                continue
            # Only the row groups holding wanted rows: a few seed phrases must not cost
            # decompressing every cached vector.
            col = TableFile(shard).take(rows, ["embedding"]).column("embedding").combine_chunks()
            matrix = col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size)
            for j, i in enumerate(rows):
                index.setdefault(shard_keys[i], n + j)
            blocks.append(matrix)
            n += len(matrix)
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
        return index, matrix

    def append(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Publish a new shard."""
        shards = self.shards()
        number = int(shards[-1].stem.split("-")[1]) + 1 if shards else 0
        write_table(
            _cache_table(keys, vectors),
            self.directory / f"part-{number:06d}.parquet",
            row_group_size=_CACHE_ROW_GROUP,
        )

    def keys(self) -> np.ndarray:
        """Every cached key, sorted and unique, as fixed-width bytes (64 B each, no vectors)."""
        blocks = [keys for _, _, keys in self._key_groups()]
        return np.unique(np.concatenate(blocks)) if blocks else np.zeros(0, _KEY_DTYPE)

    def compact(self) -> int:
        """Merge the shards into one, keeping the first vector of each key; return rows kept.

        Streams one row group at a time: memory holds the keys (64 B each), not the vectors.
        """
        shards = self.shards()
        groups = list(self._key_groups())
        if not groups:
            return 0
        _, first = np.unique(np.concatenate([keys for _, _, keys in groups]), return_index=True)
        keep = np.zeros(sum(len(keys) for _, _, keys in groups), dtype=bool)
        keep[first] = True
        number = int(shards[-1].stem.split("-")[1]) + 1
        schema = pq.read_schema(shards[0])
        offset = 0
        with ParquetSink(
            self.directory / f"part-{number:06d}.parquet", schema, _CACHE_ROW_GROUP
        ) as sink:
            for shard, group, keys in groups:
                mask = keep[offset : offset + len(keys)]
                offset += len(keys)
                if mask.any():
                    rows = pq.ParquetFile(shard).read_row_group(group)
                    sink.write(rows.filter(pa.array(mask)))
        # The merged shard is published before the old ones go: a crash here leaves duplicates
        # (harmless, first wins) but never loses a vector.
        for shard in shards:
            shard.unlink(missing_ok=True)
        return int(keep.sum())

    def clear(self) -> None:
        """Forget every cached vector (a full refresh)."""
        for shard in self.shards():
            shard.unlink(missing_ok=True)

    def _key_groups(self) -> Iterator[tuple[Path, int, np.ndarray]]:
        """(shard, row group, keys) for every row group of every shard, in storage order."""
        for shard in self.shards():
            file = pq.ParquetFile(shard)
            for group in range(file.num_row_groups):
                col = file.read_row_group(group, columns=["text_sha256"]).column("text_sha256")
                yield shard, group, np.array(col.to_pylist(), dtype=_KEY_DTYPE)

    @property
    def dimension(self) -> int | None:
        """Vector size of the cached rows; None while the cache is empty."""
        shards = self.shards()
        return pq.read_schema(shards[0]).field("embedding").type.list_size if shards else None

    @property
    def n_shards(self) -> int:
        """Number of shard files."""
        return len(self.shards())

    def shards(self) -> list[Path]:
        """The shard files, oldest first (a key in two shards: the older one's vector counts)."""
        return sorted(self.directory.glob("part-*.parquet"))


def _cache_table(keys: Sequence[str], vectors: np.ndarray) -> pa.Table:
    dim = int(vectors.shape[1])
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.Table.from_arrays(
        [pa.array(keys, type=pa.string()), pa.FixedSizeListArray.from_arrays(flat, dim)],
        names=list(_CACHE_SCHEMA_FIELDS),
    )


@dataclass(frozen=True, slots=True)
class CachedEmbeddings:
    """Vectors for a list of texts, and how many came from the cache."""

    vectors: np.ndarray
    hits: int
    misses: int


def text_key(text: str) -> str:
    """Cache key of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_with_cache(
    texts: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache,
    chunk_size: int = 2048,
    max_shards: int = 8,
) -> CachedEmbeddings:
    """Embed a list of texts in memory, computing only those not in the cache.

    For small lists (the theme catalog's phrases); a table of claims streams through
    :func:`embed_claims` instead.
    """
    keys, hits, misses = embed_new(
        [list(texts)], embed, cache, chunk_size, max(len(texts), 1), max_shards
    )
    if not len(keys):
        return CachedEmbeddings(np.zeros((0, 0), np.float32), 0, 0)
    index, matrix = cache.load({k.decode() for k in keys})
    return CachedEmbeddings(matrix[[index[k.decode()] for k in keys]], hits, misses)


def embed_new(
    batches: Iterable[list[str]],
    embed: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache,
    chunk_size: int,
    sort_window: int,
    max_shards: int,
    progress: Callable[[int, int], None] | None = None,
    workers: Workers = Workers(),
) -> tuple[np.ndarray, int, int]:
    """Embed and cache every distinct text not yet cached; return all keys, hits and misses.

    ``progress(embedded, waiting)`` is called after each chunk: texts embedded so far, and
    texts found new but not embedded yet (all that remain once the claims are all read).

    Hits and misses count distinct texts. Each night adds a shard; past ``max_shards`` they are
    merged into one, so reading the cache stays a few file opens after years of nights.

    Texts are embedded shortest first within windows of ``sort_window`` new texts:
    sentence-transformers sorts by length only within one call, so hash- or claim-ordered
    chunks would each pad short texts to their longest (that cost 5% of throughput). Each chunk
    of ``chunk_size`` is a cache checkpoint, and one task when ``workers`` is a cluster's (then
    ``embed`` must be picklable: :func:`pipeline.embed.workers.encode_texts`).
    """
    known = cache.keys()
    key_blocks: list[np.ndarray] = []
    window: dict[bytes, str] = {}
    misses = 0
    embedded = 0

    def flush() -> np.ndarray:
        nonlocal embedded
        todo = sorted(window, key=lambda k: (len(window[k]), k))  # ties by key: deterministic
        chunks = (todo[start : start + chunk_size] for start in range(0, len(todo), chunk_size))
        for chunk, found in workers.map(embed, chunks, lambda c: [window[k] for k in c]):
            vectors = np.asarray(found, dtype=np.float32)
            cache.append([k.decode() for k in chunk], vectors)
            embedded += len(chunk)
            if progress is not None:
                progress(embedded, misses - embedded)
        window.clear()
        return np.union1d(known, np.array(todo, dtype=_KEY_DTYPE))

    for texts in batches:
        keys = np.array([text_key(t).encode() for t in texts], dtype=_KEY_DTYPE)
        key_blocks.append(keys)
        for i in np.flatnonzero(~_member(keys, known)).tolist():
            if keys[i] not in window:
                window[keys[i]] = texts[i]
                misses += 1
        if len(window) >= sort_window:
            known = flush()
    if window:
        flush()
    if cache.n_shards > max_shards:
        cache.compact()
    keys = np.concatenate(key_blocks) if key_blocks else np.zeros(0, _KEY_DTYPE)
    return keys, len(np.unique(keys)) - misses, misses


def _member(keys: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Which of ``keys`` occur in the sorted array ``ordered``."""
    if not len(ordered):
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
    found: np.ndarray = ordered[pos] == keys
    return found
