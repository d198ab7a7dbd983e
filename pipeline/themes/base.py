"""Pieces the theme modules share: theme records, ranking, unit vectors, group means, top-k."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

UNASSIGNED: Final = "unassigned"


@dataclass(slots=True)
class ThemeInfo:
    """A theme row before it becomes a table row."""

    theme_id: str
    label: str
    kind: str
    member_idx: np.ndarray
    centroid: np.ndarray | None = None
    keywords: list[str] = field(default_factory=list)
    representatives: list[int] = field(default_factory=list)
    coherence: float | None = None
    parent_id: str | None = None


def ranking(scores: np.ndarray) -> np.ndarray:
    """Scores rounded for ordering decisions.

    Embeddings from the cache were computed in other batches than a fresh run's, which moves
    float32 results by ~1e-7; near-ties must then break by position (a stable sort), not noise.
    """
    rounded: np.ndarray = np.round(scores.astype(np.float64), 4)
    return rounded


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (float32); a zero vector stays zero."""
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row of ``x`` scaled to length 1 (float32)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    out: np.ndarray = (x / np.maximum(norms, 1e-12)[:, None]).astype(np.float32)
    return out


def group_ids(keys: Sequence[Any]) -> np.ndarray:
    """Dense group number per item (numbered by first appearance)."""
    ids: dict[Any, int] = {}
    return np.fromiter((ids.setdefault(k, len(ids)) for k in keys), dtype=np.int64, count=len(keys))


def group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row replaced by the mean of its group's rows (float32, as the embeddings)."""
    means: np.ndarray = group_means(values, groups, int(groups.max()) + 1)[groups]
    return means


def group_means(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean row per group, one row per group."""
    from scipy.sparse import csr_matrix

    counts = np.bincount(groups, minlength=n_groups).astype(np.float32)
    member = csr_matrix(
        (1 / counts[groups], (groups, np.arange(len(groups)))), shape=(n_groups, len(groups))
    )
    means: np.ndarray = np.asarray(member @ np.asarray(values, dtype=np.float32))
    return means


def document_context(embeddings: np.ndarray, doc_ids: Sequence[str], weight: float) -> np.ndarray:
    """Claim vectors pulled towards their document's mean: the space discovery clusters in.

    A news sentence alone often says little about its topic ("He said it was a good result");
    its article does.
    """
    if weight == 0 or len(embeddings) == 0:
        return embeddings
    mixed = group_mean(embeddings, group_ids(doc_ids))
    # In place: these arrays are (claims x dim); every temporary costs a pass over memory.
    mixed *= weight
    mixed += (1 - weight) * embeddings
    norms = np.sqrt(np.einsum("ij,ij->i", mixed, mixed))
    mixed /= np.maximum(norms, 1e-12)[:, None]
    return mixed


class TopK:
    """The ``k`` highest scores seen so far with their positions; ties go to the lower position.

    Scores are compared rounded (:func:`ranking`), as the in-memory ranking did.
    """

    def __init__(self, k: int) -> None:
        """Keep the best ``k``."""
        self.k = k
        self._scores = np.zeros(0, dtype=np.float64)
        self._index = np.zeros(0, dtype=np.int64)
        self._ids = np.zeros(0, dtype=object)
        self._texts = np.zeros(0, dtype=object)

    def add(
        self, scores: np.ndarray, index: np.ndarray, ids: Sequence[str], texts: Sequence[str]
    ) -> None:
        """Offer more candidates: their scores, positions, claim ids and texts."""
        all_scores = np.concatenate([self._scores, ranking(scores)])
        all_index = np.concatenate([self._index, index])
        all_ids = np.concatenate([self._ids, np.asarray(ids, dtype=object)])
        all_texts = np.concatenate([self._texts, np.asarray(texts, dtype=object)])
        order = np.lexsort((all_index, -all_scores))[: self.k]
        self._scores, self._index = all_scores[order], all_index[order]
        self._ids, self._texts = all_ids[order], all_texts[order]

    @property
    def texts(self) -> list[str]:
        """Texts of the best, best first."""
        return [str(t) for t in self._texts]

    def best(self) -> dict[int, str]:
        """Position to claim id, best first."""
        return {int(i): str(c) for i, c in zip(self._index, self._ids, strict=True)}
