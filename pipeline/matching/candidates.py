"""Candidate pairs: for each new claim, its nearest claims of other documents.

Exact up to a few hundred thousand claims: the similarities are computed a block of queries at a
time (never an n x n matrix), masked, and cut to the top k. Beyond that, an HNSW index (usearch)
returns the approximate nearest neighbours, which are masked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Candidates", "find_candidates"]

_UNDATED = np.iinfo(np.int32).min


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
    lefts, rights, cosines = [], [], []
    for q, cols, sims in search(vectors, queries, top_k, block_bytes):
        keep = (sims >= floor) & (family[cols] != family[q][:, None])
        if max_days_apart is not None:
            dq, dc = day[q][:, None], day[cols]
            dated = (dq != _UNDATED) & (dc != _UNDATED)
            keep &= ~dated | (np.abs(dq.astype(np.int64) - dc) <= max_days_apart)
        rows, ks = np.nonzero(keep)
        a, b = q[rows], cols[rows, ks]
        lefts.append(np.minimum(a, b))
        rights.append(np.maximum(a, b))
        cosines.append(sims[rows, ks])
    left, right = np.concatenate(lefts), np.concatenate(rights)
    cosine = np.concatenate(cosines).astype(np.float32)
    # A pair of two new claims is found from both sides: keep it once.
    order = np.lexsort((right, left))
    left, right, cosine = left[order], right[order], cosine[order]
    first = np.ones(len(left), bool)
    first[1:] = (left[1:] != left[:-1]) | (right[1:] != right[:-1])
    return Candidates(left[first], right[first], cosine[first])


def _exact(
    vectors: np.ndarray, queries: np.ndarray, top_k: int, block_bytes: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    n = len(vectors)
    k = min(top_k + 1, n)  # +1: a claim is its own nearest neighbour
    rows = max(1, block_bytes // (4 * n))
    for a in range(0, len(queries), rows):
        q = queries[a : a + rows]
        sims = np.asarray(vectors[q], np.float32) @ np.asarray(vectors, np.float32).T
        sims[np.arange(len(q)), q] = -np.inf
        cols = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        yield q, cols, np.take_along_axis(sims, cols, axis=1)


def _approximate(
    vectors: np.ndarray, queries: np.ndarray, top_k: int, block_bytes: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from usearch.index import Index

    n, dim = vectors.shape
    index = Index(ndim=dim, metric="cos", dtype="f32")
    step = max(1, block_bytes // (4 * dim))
    for a in range(0, n, step):
        chunk = np.asarray(vectors[a : a + step], np.float32)
        # One thread: the graph then depends only on the insertion order (reproducible).
        index.add(np.arange(a, a + len(chunk), dtype=np.uint64), chunk, threads=1)
    k = min(top_k + 1, n)
    for a in range(0, len(queries), step):
        q = queries[a : a + step]
        found = index.search(np.asarray(vectors[q], np.float32), k)
        cols = found.keys.astype(np.int64)
        sims = (1.0 - found.distances).astype(np.float32)
        missing = (cols < 0) | (cols >= n) | (cols == q[:, None])
        cols[missing] = q[np.nonzero(missing)[0]]
        sims[missing] = -np.inf
        yield q, cols, sims
