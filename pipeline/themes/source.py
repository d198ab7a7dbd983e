"""source."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from pipeline.embed import align_embeddings
from pipeline.storage import TableFile

CHUNK_ROWS: Final = 16_384


@dataclass(frozen=True, slots=True)
class ClaimChunk:
    """Consecutive claims, whole documents only, with their embeddings.

    Whole documents because a claim's scores and discovery vector mix in its paragraph's and
    document's means: a document cut in two would give its claims other values.
    """

    start: int  # position of the first claim in the claims table
    claim_ids: list[str]
    doc_ids: list[str]
    texts: list[str]
    paragraphs: list[int]
    embeddings: np.ndarray  # (len, dim), L2-normalised

    def __len__(self) -> int:
        """Number of claims."""
        return len(self.claim_ids)

    def rows(self, a: int, b: int, start: int) -> ClaimChunk:
        """Claims ``a`` to ``b`` of this chunk, the first being claim ``start`` of the table."""
        return ClaimChunk(
            start,
            self.claim_ids[a:b],
            self.doc_ids[a:b],
            self.texts[a:b],
            self.paragraphs[a:b],
            self.embeddings[a:b],
        )

    @staticmethod
    def concat(parts: Sequence[ClaimChunk]) -> ClaimChunk:
        """One chunk of these parts, in order."""
        if len(parts) == 1:
            return parts[0]
        return ClaimChunk(
            parts[0].start,
            [c for p in parts for c in p.claim_ids],
            [d for p in parts for d in p.doc_ids],
            [t for p in parts for t in p.texts],
            [g for p in parts for g in p.paragraphs],
            np.concatenate([p.embeddings for p in parts]),
        )


ClaimSource = Callable[[], Iterable[ClaimChunk]]


"""Reads the claims afresh on each call, chunk by chunk: the model makes several passes."""


def array_claims(
    embeddings: np.ndarray,
    texts: Sequence[str],
    doc_ids: Sequence[str],
    paragraphs: Sequence[int],
    claim_ids: Sequence[str],
    chunk_rows: int = CHUNK_ROWS,
) -> ClaimSource:
    """Claims held in memory, as a source (tests, benchmarks, small inputs).

    Raises:
        ValueError: If a document's claims are not consecutive.
    """
    if not len(embeddings) == len(texts) == len(doc_ids) == len(paragraphs) == len(claim_ids):
        raise ValueError("embeddings, texts, doc_ids, paragraphs and claim_ids differ in length")

    def pieces() -> Iterator[ClaimChunk]:
        for a in range(0, len(claim_ids), chunk_rows):
            b = a + chunk_rows
            yield ClaimChunk(
                a,
                list(claim_ids[a:b]),
                list(doc_ids[a:b]),
                list(texts[a:b]),
                list(paragraphs[a:b]),
                np.asarray(embeddings[a:b], dtype=np.float32),
            )

    return lambda: _whole_documents(pieces(), chunk_rows)


def file_claims(
    claims: TableFile, embeddings: TableFile, chunk_rows: int = CHUNK_ROWS
) -> ClaimSource:
    """The ``claims`` table and its ``claim_embeddings``, read a batch at a time.

    Raises:
        ValueError: If a document's claims are not consecutive, or the tables differ in rows.
        KeyError: If a claim's embedding is not in the same batch (stale embeddings).
    """

    def pieces() -> Iterator[ClaimChunk]:
        vectors = _Rows(embeddings.batches(["claim_id", "embedding"], batch_size=chunk_rows))
        start = 0
        for batch in claims.batches(["claim_id", "doc_id", "text", "paragraph"], chunk_rows):
            ids = batch.column("claim_id")
            yield ClaimChunk(
                start,
                ids.to_pylist(),
                batch.column("doc_id").to_pylist(),
                batch.column("text").to_pylist(),
                batch.column("paragraph").to_pylist(),
                align_embeddings(vectors.take(batch.num_rows), ids),
            )
            start += batch.num_rows
        if not vectors.exhausted():
            raise ValueError("claim_embeddings has more rows than claims: rematerialize it")

    return lambda: _whole_documents(pieces(), chunk_rows)


class _Rows:
    """Record batches re-cut to any number of rows (two files' batches need not line up)."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._pending: list[pa.RecordBatch] = []
        self._size = 0

    def exhausted(self) -> bool:
        """Whether every row has been taken."""
        while not self._size:
            batch = next(self._batches, None)
            if batch is None:
                return True
            self._pending, self._size = [batch], batch.num_rows
        return False

    def take(self, n: int) -> pa.Table:
        while self._size < n:
            batch = next(self._batches, None)
            if batch is None:
                break
            self._pending.append(batch)
            self._size += batch.num_rows
        table = pa.Table.from_batches(self._pending) if self._pending else pa.table({})
        if table.num_rows < n:
            raise ValueError("claim_embeddings has fewer rows than claims: rematerialize it")
        head, rest = table.slice(0, n), table.slice(n)
        self._pending, self._size = rest.to_batches(), rest.num_rows
        return head


def _whole_documents(pieces: Iterable[ClaimChunk], chunk_rows: int) -> Iterator[ClaimChunk]:
    """Chunks of about ``chunk_rows`` claims that end where a document ends."""
    pending: list[ClaimChunk] = []
    size = start = 0
    finished: set[str] = set()

    def checked(chunk: ClaimChunk) -> ClaimChunk:
        firsts = [0, *(i for i in range(1, len(chunk)) if chunk.doc_ids[i] != chunk.doc_ids[i - 1])]
        for i in firsts:
            doc = chunk.doc_ids[i]
            if doc in finished:
                raise ValueError(
                    f"the claims of document {doc} are not consecutive: sort claims by doc_id"
                )
            finished.add(doc)
        return chunk

    for piece in pieces:
        pending.append(piece)
        size += len(piece)
        if size < chunk_rows:
            continue
        merged = ClaimChunk.concat(pending)
        docs = merged.doc_ids
        cut = next((i for i in range(len(docs) - 1, 0, -1) if docs[i] != docs[i - 1]), 0)
        if cut == 0:  # one document so far: wait for the next one to start
            pending = [merged]
            continue
        yield checked(merged.rows(0, cut, start))
        start += cut
        pending, size = [merged.rows(cut, len(merged), start)], len(merged) - cut
    if size:
        yield checked(ClaimChunk.concat(pending).rows(0, size, start))


class Replay:
    """A source whose chunks are kept after the first pass if they total ``limit`` claims or less.

    Small corpora (BBC's 40,000 claims) are then read once instead of two or three times; the
    memory this holds is capped by ``limit``, not by the corpus.
    """

    def __init__(self, source: ClaimSource, limit: int) -> None:
        """Wrap ``source``, keeping at most ``limit`` claims."""
        self._source, self._limit = source, limit
        self._kept: list[ClaimChunk] | None = None

    def __call__(self) -> Iterator[ClaimChunk]:
        """The chunks: from memory once a complete first pass kept them, else read afresh."""
        return iter(self._kept) if self._kept is not None else self._read()

    def _read(self) -> Iterator[ClaimChunk]:
        kept: list[ClaimChunk] | None = []
        held = 0
        for chunk in self._source():
            held += len(chunk)
            if kept is not None and held > self._limit:
                kept = None
            elif kept is not None:
                kept.append(chunk)
            yield chunk
        self._kept = kept
