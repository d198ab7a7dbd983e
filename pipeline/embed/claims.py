"""The `claim_embeddings` table: every claim's vector, streamed from the cache in claim order."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from pipeline.embed.cache import EmbeddingCache, embed_new
from pipeline.embed.model import ModelError
from pipeline.parallel import Workers
from pipeline.schemas import embeddings_schema
from pipeline.storage import BATCH_ROWS, ParquetSink, TableFile, write_table


def embeddings_table(
    claim_ids: Sequence[str] | pa.Array, vectors: np.ndarray, model: str
) -> pa.Table:
    """Build a `claim_embeddings` table without per-row Python objects."""
    dim = int(vectors.shape[1])
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.Table.from_arrays(
        [
            pa.array(claim_ids, type=pa.string()),
            pa.FixedSizeListArray.from_arrays(flat, dim),
            pa.array([model] * len(vectors), type=pa.string()),
        ],
        schema=embeddings_schema(dim),
    )


def align_embeddings(
    table: pa.Table, claim_ids: Sequence[str] | pa.Array | pa.ChunkedArray
) -> np.ndarray:
    """Return the embeddings of ``claim_ids``, in that order, as an ``(n, dim)`` array.

    When the table is already in that order (as :func:`embed_claims` writes it), the matrix
    is a view of the table's buffer: no copy, no per-claim Python object.

    Raises:
        KeyError: If a claim has no embedding (the embeddings are stale: rematerialize them).
    """
    col = table.column("embedding").combine_chunks()
    dim = col.type.list_size
    matrix: np.ndarray = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    if isinstance(claim_ids, pa.ChunkedArray):
        wanted = claim_ids
    elif isinstance(claim_ids, pa.Array):
        wanted = pa.chunked_array([claim_ids])
    else:
        wanted = pa.chunked_array([pa.array(claim_ids, pa.string())], pa.string())
    if table.column("claim_id").equals(wanted):
        return matrix
    ids = table.column("claim_id").to_pylist()
    position = {cid: i for i, cid in enumerate(ids)}
    wanted_ids = wanted.to_pylist()
    missing = [c for c in wanted_ids if c not in position]
    if missing:
        raise KeyError(
            f"{len(missing)} claims have no embedding (first: {missing[0]}); "
            "rematerialize claim_embeddings"
        )
    out: np.ndarray = matrix[[position[c] for c in wanted_ids]]
    return out


@dataclass(frozen=True, slots=True)
class EmbeddedClaims:
    """What :func:`embed_claims` wrote and how much of it came from the cache."""

    rows: int
    hits: int
    misses: int


def embed_claims(
    claims: TableFile,
    embed: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache,
    destination: Path,
    model: str,
    *,
    chunk_size: int = 2048,
    sort_window: int = 65_536,
    max_shards: int = 8,
    dimension: Callable[[], int] | None = None,
    batch_size: int = BATCH_ROWS,
    progress: Callable[[int, int], None] | None = None,
    workers: Workers = Workers(),
) -> EmbeddedClaims:
    """Write the `claim_embeddings` table of ``claims`` to ``destination``, streaming.

    1. Read the claim texts a batch at a time, keeping only their SHA-256 keys (64 B each).
       Texts not in the cache are embedded once each, shortest first within windows of
       ``sort_window`` texts (sentence-transformers sorts by length only within one call), and
       checkpointed to the cache every ``chunk_size`` texts.
    2. Join the claims with the cache on the text's SHA-256 in DuckDB, in claim order (out of
       core past its memory limit), and write the table a batch at a time as Parquet row groups.

    Memory holds the keys, one window of new texts, DuckDB's bounded working memory and one
    batch of vectors: a corpus ten times larger needs ten times the keys (64 B a claim), not ten
    times the vectors (1.5 kB a claim with 384 dimensions).

    Args:
        claims: The `claims` table (``claim_id`` and ``text`` are read).
        embed: Texts to L2-normalised vectors (the embedder resource's ``embed``).
        cache: The model's embedding cache; completed in place.
        destination: Parquet file to write (atomically).
        model: Value of the ``model`` column.
        chunk_size: New texts per embedding call and cache checkpoint.
        sort_window: New texts sorted by length together.
        max_shards: Past this many cache shards, they are merged into one.
        dimension: The model's dimension, asked for only when there is no claim at all.
        batch_size: Claims read (and embedding rows written) at a time.
        progress: ``progress(embedded, waiting)`` after each chunk of new texts.
        workers: Where chunks are embedded (this process by default; see :func:`embed_new`).
    """
    keys, hits, misses = embed_new(
        (b.column(0).to_pylist() for b in claims.batches(["text"], batch_size)),
        embed,
        cache,
        chunk_size,
        sort_window,
        max_shards,
        progress,
        workers,
    )
    if not len(keys):
        dim = dimension() if dimension else 0
        write_table(embeddings_table([], np.zeros((0, dim), np.float32), model), destination)
        return EmbeddedClaims(0, 0, 0)
    dim = cache.dimension or 0
    with ParquetSink(destination, embeddings_schema(dim)) as sink:
        batches = _cached_vectors(claims, cache, dim, destination.parent, batch_size)
        for claim_ids, vectors in batches:
            sink.write(embeddings_table(claim_ids, vectors, model))
    return EmbeddedClaims(len(keys), hits, misses)


# DuckDB's memory for the join and sort; past it, both spill to a temporary folder.
_JOIN_MEMORY: Final = "512MB"
_CLAIM_VECTORS: Final = """
    SELECT c.claim_id, v.embedding
    FROM claims AS c
    LEFT JOIN (
        SELECT text_sha256, embedding FROM cache
        QUALIFY row_number() OVER (
            PARTITION BY text_sha256 ORDER BY filename, file_row_number
        ) = 1
    ) AS v ON v.text_sha256 = sha256(c.text)
    ORDER BY c.file_row_number
"""


def _cached_vectors(
    claims: TableFile, cache: EmbeddingCache, dim: int, work: Path, batch_size: int
) -> Iterator[tuple[pa.Array, np.ndarray]]:
    """``(claim_ids, vectors)`` in claim order, a batch at a time, from the cache.

    A text cached twice (two shards) takes the first shard's vector, as :meth:`load` does.

    Raises:
        ModelError: If a claim's text is not in the cache (removed during the run).
    """
    import duckdb

    with (
        tempfile.TemporaryDirectory(prefix=".tmp-gather-", dir=work) as spill,
        duckdb.connect(config={"memory_limit": _JOIN_MEMORY, "temp_directory": spill}) as con,
    ):
        con.read_parquet(str(claims.path), file_row_number=True).create_view("claims")
        shards = [str(path) for path in cache.shards()]
        con.read_parquet(shards, filename=True, file_row_number=True).create_view("cache")
        for batch in con.sql(_CLAIM_VECTORS).to_arrow_reader(batch_size):
            embedding = batch.column("embedding")
            if embedding.null_count:
                raise ModelError(
                    f"{embedding.null_count} embeddings vanished from the cache "
                    f"{cache.directory} during the run; run again"
                )
            vectors = embedding.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
            yield batch.column("claim_id"), vectors
