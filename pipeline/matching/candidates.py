"""Candidate pairs: for each new claim, its nearest claims of other documents.

Exact up to a few hundred thousand claims: the similarities are computed a block of queries at a
time (never an n x n matrix), thresholded, masked, and cut to the top k per claim. When every
claim is new (a first run or a rebuild), each pair is computed once, for both of its claims.
Beyond that size, an HNSW index (usearch) returns the approximate nearest neighbours, which are
thresholded and masked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["UNDATED", "Candidates", "find_candidates"]

UNDATED = int(np.iinfo(np.int32).min)  # the day of a claim whose article has no date


@dataclass(frozen=True, slots=True)
class Candidates:
    """Pairs ``(left[i], right[i])`` of claim positions with their cosine, ``left < right``."""

    left: np.ndarray
    right: np.ndarray
    cosine: np.ndarray

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.left)


def find_candidates(
    vectors: np.ndarray,
    queries: np.ndarray,
    family: np.ndarray,
    day: np.ndarray,
    *,
    top_k: int,
    floor: float,
    max_days_apart: int | None,
    exact_max: int,
    block_bytes: int,
) -> Candidates:
    """The nearest claims of every query claim, as unique pairs.

    Args:
        vectors: ``(n, dim)`` L2-normalised embeddings of every claim (a memory map is fine).
        queries: Positions of the claims to match (the new ones), sorted.
        family: Per claim, its document family (a document and its near duplicates share one):
            claims of one family are never candidates.
        day: Per claim, its article's date as a day number, or ``np.iinfo(np.int32).min``.
        top_k: Neighbours kept per query.
        floor: Lowest cosine kept.
        max_days_apart: Dated claims further apart are not paired; None: no limit.
        exact_max: Exact search up to this many claims, HNSW beyond.
        block_bytes: Memory for one block of similarities (exact search).

    Returns:
        Unique pairs sorted by (left, right).
    """
    n = len(vectors)
    if n < 2 or not len(queries):
        empty = np.empty(0, np.int64)
        return Candidates(empty, empty, np.empty(0, np.float32))
    search = _exact if n <= exact_max else _approximate

    def allowed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        keep: np.ndarray = family[a] != family[b]
        if max_days_apart is not None:
            da, db = day[a], day[b]
            dated = (da != UNDATED) & (db != UNDATED)
            keep &= ~dated | (np.abs(da.astype(np.int64) - db) <= max_days_apart)
        return keep

    best = _RunningTopK(top_k, limit=max(1 << 20, 4 * top_k * len(queries)))
    for a, b, sims, mirrored in search(vectors, queries, floor, block_bytes, top_k):
        keep = allowed(a, b)
        a, b, sims = a[keep], b[keep], sims[keep]
        best.add(a, b, sims)
        if mirrored:  # computed once for two new claims: a candidate of both
            best.add(b, a, sims)
    a, b, sims = best.result()
    left, right = np.minimum(a, b), np.maximum(a, b)
    cosine = sims.astype(np.float32)
    # A pair of two new claims is found from both sides: keep it once.
    order = np.lexsort((right, left))
    left, right, cosine = left[order], right[order], cosine[order]
    first = np.ones(len(left), bool)
    first[1:] = (left[1:] != left[:-1]) | (right[1:] != right[:-1])
    return Candidates(left[first], right[first], cosine[first])


def _top_k_per_query(
    a: np.ndarray, b: np.ndarray, sims: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` most similar pairs of each query ``a`` (ties: the smaller ``b``)."""
    order = np.lexsort((b, -sims, a))
    a, b, sims = a[order], b[order], sims[order]
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    rank = np.arange(len(a)) - np.repeat(starts, np.diff(np.r_[starts, len(a)]))
    keep = rank < k
    return a[keep], b[keep], sims[keep]


class _RunningTopK:
    """The ``k`` best (query, other, similarity) triples per query, over pairs added in parts.

    Pairs are buffered and cut back to ``k`` per query whenever the buffer passes ``limit``,
    so memory stays about ``k`` triples per query plus the limit.
    """

    def __init__(self, k: int, limit: int) -> None:
        self.k, self.limit = k, limit
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.size = 0

    def add(self, a: np.ndarray, b: np.ndarray, sims: np.ndarray) -> None:
        self.parts.append((a, b, sims))
        self.size += len(a)
        if self.size > self.limit:
            self.parts = [self.result()]
            self.size = len(self.parts[0][0])

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            empty = np.empty(0, np.int64)
            return empty, empty, np.empty(0, np.float32)
        a, b, sims = (np.concatenate(x) for x in zip(*self.parts, strict=True))
        return _top_k_per_query(a, b, sims, self.k)


def _exact(
    vectors: np.ndarray, queries: np.ndarray, floor: float, block_bytes: int, top_k: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Every pair of a query and a claim at ``floor`` or above, a block of queries at a time.

    Thresholding before ranking keeps the cost one comparison per similarity: most pairs of
    claims are far below the floor. When every claim is a query, a block is compared with
    itself and the claims after it only, and its pairs are marked mirrored.
    """
    n = len(vectors)
    every = np.asarray(vectors, np.float32)
    rows = max(1, block_bytes // (4 * n))
    everyone = len(queries) == n  # queries are sorted and unique: they are 0..n-1
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows]
        first = int(q[0]) if everyone else 0
        sims = every[q] @ every[first:].T
        sims[np.arange(len(q)), q - first] = -np.inf  # a claim is not its own candidate
        r, c = np.nonzero(sims >= floor)
        a, b, found = q[r], c.astype(np.int64) + first, sims[r, c]
        if everyone:  # within the block's own square, each pair once
            keep = b > a
            a, b, found = a[keep], b[keep], found[keep]
        yield a, b, found, everyone


def _approximate(
    vectors: np.ndarray, queries: np.ndarray, floor: float, block_bytes: int, top_k: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """The approximate nearest claims of each query (HNSW), at ``floor`` or above.

    Twice ``top_k`` are asked for, as claims of the query's own document family are dropped
    after the search.
    """
    from usearch.index import Index

    n, dim = vectors.shape
    index = Index(ndim=dim, metric="cos", dtype="f32")
    step = max(1, block_bytes // (4 * dim))
    for a in range(0, n, step):
        chunk = np.asarray(vectors[a : a + step], np.float32)
        # One thread: the graph then depends only on the insertion order (reproducible).
        index.add(np.arange(a, a + len(chunk), dtype=np.uint64), chunk, threads=1)
    k = min(2 * top_k + 1, n)
    for a in range(0, len(queries), step):
        q = queries[a : a + step]
        found = index.search(np.asarray(vectors[q], np.float32), k)
        cols = found.keys.astype(np.int64)
        sims = (1.0 - found.distances).astype(np.float32)
        keep = (cols >= 0) & (cols < n) & (cols != q[:, None]) & (sims >= floor)
        r, c = np.nonzero(keep)
        yield q[r], cols[r, c], sims[r, c], False
