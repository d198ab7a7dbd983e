"""Discovered themes: k-means over the claims no named theme took, kept inside broad clusters.

Documents are clustered first (:mod:`pipeline.themes.hierarchy`). Discovery runs over all the
claims left, so the number of themes is chosen once for the corpus, and a theme that spans
several broad clusters is split at their borders: a fine theme never straddles two broad
themes, and a claim's broad theme is its document's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.ids import stable_id
from pipeline.themes.base import unit
from pipeline.themes.config import ThemeConfig
from pipeline.themes.previous import PreviousThemes


class RestSample:
    """The claims left to discovery, or ``limit`` of them drawn by a seeded hash of their id.

    The draw depends on the claim ids and ``random_state`` only, not on the order or the
    chunking, so the same claims are drawn every night they are present. Members are kept in
    table order: below the limit, discovery sees exactly what it would see in memory.
    """

    def __init__(self, limit: int, random_state: int, dim: int) -> None:
        """Hold at most ``limit`` claims of ``dim``-dimensional vectors."""
        self.limit, self.random_state = limit, random_state
        self.index = np.zeros(0, dtype=np.int64)
        # Joined when read or pruned, not on every chunk: each join copies every vector held.
        self._vectors = [np.zeros((0, dim), dtype=np.float32)]
        self.claim_ids: list[str] = []
        self.doc_ids: list[str] = []
        self.previous: list[str | None] = []
        self._priority = np.zeros(0, dtype=np.uint64)
        self.sampled = False

    def add(
        self,
        index: np.ndarray,
        claim_ids: list[str],
        doc_ids: list[str],
        previous: list[str | None],
        vectors: np.ndarray,
    ) -> None:
        """Offer these claims (positions in the table, ascending, after those already held)."""
        self.index = np.concatenate([self.index, index])
        self._vectors.append(vectors)
        self.claim_ids += claim_ids
        self.doc_ids += doc_ids
        self.previous += previous
        if len(self.index) > self.limit:
            # Priorities only once the limit is passed: below it every claim is kept anyway.
            salt = f"{self.random_state}\x1f".encode()
            new = self.claim_ids[len(self._priority) :]
            priority = np.fromiter(
                (
                    int.from_bytes(hashlib.sha256(salt + c.encode()).digest()[:8], "big")
                    for c in new
                ),
                dtype=np.uint64,
                count=len(new),
            )
            self._priority = np.concatenate([self._priority, priority])
            keep = np.sort(np.argpartition(self._priority, self.limit - 1)[: self.limit])
            self.index, self._vectors = self.index[keep], [self.vectors[keep]]
            self._priority = self._priority[keep]
            self.claim_ids = [self.claim_ids[i] for i in keep]
            self.doc_ids = [self.doc_ids[i] for i in keep]
            self.previous = [self.previous[i] for i in keep]
            self.sampled = True

    @property
    def vectors(self) -> np.ndarray:
        """The held claims' discovery vectors, in table order."""
        if len(self._vectors) > 1:
            self._vectors = [np.concatenate(self._vectors)]
        return self._vectors[0]

    def drop_vectors(self) -> None:
        """Free the vectors once discovery has run."""
        self._vectors = [self.vectors[:0]]


def kmeans(x: np.ndarray, k: int, cfg: ThemeConfig, n_init: int | None = None) -> np.ndarray:
    """K-means labels of ``x`` (mini-batch above 5,000 points), seeded by the config."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(x) > 5000:
        km: Any = MiniBatchKMeans(
            n_clusters=k, random_state=cfg.random_state, n_init=n_init or 3, batch_size=4096
        )
    else:
        km = KMeans(n_clusters=k, random_state=cfg.random_state, n_init=n_init or 4)
    labels: np.ndarray = km.fit_predict(x)
    return labels


def search_k(x: np.ndarray, ks: list[int], cfg: ThemeConfig) -> np.ndarray | None:
    """Cluster with the k of the best cosine silhouette; return the labels.

    Above ``search_sample`` points, k is chosen on a seeded sample with one k-means start per
    candidate, and only the chosen k is fitted on every point with full restarts: a dozen full
    fits would cost more than the rest of the theme step.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.metrics.pairwise import cosine_distances

    sampled = len(x) > cfg.search_sample
    if sampled:
        rng = np.random.default_rng(cfg.random_state)
        sample = x[np.sort(rng.choice(len(x), cfg.search_sample, replace=False))]
    else:
        sample = x
    # The points silhouette_score(sample_size=..., random_state=...) would draw, and their
    # distances computed once for every k instead of once per k: the same scores, bit for bit.
    scored = np.random.RandomState(cfg.random_state).permutation(len(sample))
    scored = scored[: min(len(sample), cfg.silhouette_sample)]
    distances = cosine_distances(sample[scored])
    best: tuple[float, int, np.ndarray] | None = None
    for k in ks:
        labels = kmeans(sample, k, cfg, n_init=1 if sampled else None)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(distances, labels[scored], metric="precomputed"))
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    if best is None:
        return None
    return kmeans(x, best[1], cfg) if sampled else best[2]


def k_grid(n: int, cfg: ThemeConfig) -> list[int]:
    """Candidate numbers of clusters for ``n`` points."""
    n_hi = min(cfg.max_discovered, n // cfg.min_cluster_size)
    n_lo = min(n_hi, max(2, -(-n // cfg.max_claims_per_theme)))
    grid = sorted(
        {n_lo, n_hi, *(k for k in (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60))}
    )
    return [k for k in grid if n_lo <= k <= n_hi]


def _count_distinct(x: np.ndarray) -> int:
    """Number of distinct rows, treating rows equal to 5 decimals as one.

    Compares two fixed random projections instead of whole rows: sorting (n x dim) rows costs
    more than the nightly refit itself, and only "how many distinct points" is needed.
    """
    if not len(x):
        return 0
    directions = np.random.default_rng(0).standard_normal((x.shape[1], 2)).astype(np.float32)
    return len(np.unique(np.round(x @ directions, 5), axis=0))


def fine_themes(
    x: np.ndarray,
    claim_ids: list[str],
    doc_ids: list[str],
    prev_labels: list[str | None],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
    cluster: np.ndarray | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Discovered themes: (theme_id, member indices into ``x``, unit centroid), largest first.

    ``cluster``: each claim's broad cluster (its document's), if the corpus has them; on
    later runs cluster ``c`` is ``previous.broad_ids[c]``.
    """
    n = len(x)
    n_distinct = _count_distinct(x)
    if n_distinct < 2 or n < 2 * cfg.min_cluster_size:
        return []
    labels: np.ndarray | None
    warm = previous is not None and 1 <= len(previous.ids) < n_distinct
    if previous is not None and warm:
        # Warm start: assign to last night's centroids, then move each centroid once to the mean
        # of its claims (one Lloyd step per night). Themes follow the data gradually instead of
        # being re-drawn by a fresh k-means, which would move boundary claims between ids.
        k = len(previous.ids)
        # A claim warm-starts in one of its own cluster's themes (it would be split there).
        home = previous.broad_columns()
        other = (
            (home[None, :] >= 0) & (home[None, :] != cluster[:, None])
            if cluster is not None
            else np.zeros((n, k), dtype=bool)
        )
        prev_sims = np.where(other, -2.0, x @ previous.centroids.T)
        labels = prev_sims.argmax(axis=1)
        # Novelty is judged against last night's themes, before any centroid moves, so a new
        # topic cannot be absorbed by a theme that has lost its own claims. Only claims without
        # a theme last night can be novel: an old claim far from every centroid was still
        # placed in its theme by k-means, and moving it would churn ids for no new information.
        unplaced = np.array([p is None for p in prev_labels], dtype=bool)
        novel = np.flatnonzero((prev_sims.max(axis=1) < cfg.novelty_threshold) & unplaced)
        labels[novel] = -1
        centroids = np.stack(
            [
                unit(x[labels == c].mean(axis=0)) if (labels == c).any() else previous.centroids[c]
                for c in range(k)
            ]
        )
        sims = np.where(other, -2.0, x @ centroids.T)
        best = sims.max(axis=1)
        column = {tid: c for c, tid in enumerate(previous.ids)}
        # Claims with a theme last night are never novel, so every one of them is placed here.
        keep_previous(labels, sims, best, prev_labels, column, cfg.stickiness)
        if len(novel) >= 2 * cfg.min_cluster_size:
            sub = search_k(x[novel], k_grid(len(novel), cfg), cfg)
            if sub is not None:
                labels[novel] = k + sub
                # One new article is not a new theme: a novel cluster must recur across
                # documents, else its claims stay unassigned until more articles join them.
                for c in np.unique(sub):
                    members = novel[sub == c]
                    if len({doc_ids[i] for i in members}) < cfg.novel_min_documents:
                        labels[members] = -1
    else:
        labels = search_k(x, k_grid(min(n, n_distinct), cfg), cfg)
        if labels is None:
            return []
    kept = [
        c
        for c in np.unique(labels)
        if c >= 0 and (labels == c).sum() >= cfg.min_cluster_size  # -1: novel, left ungrouped
    ]
    if not kept:
        return []
    # Claims of a group too small to be a theme join the nearest kept theme unless they are
    # novel next to it (the test the nightly warm start applies); else they stay unassigned.
    # Without this a second night on the same data would place them where the first did not.
    centroids = np.stack([unit(x[labels == c].mean(axis=0)) for c in kept])
    orphans = np.flatnonzero((labels >= 0) & ~np.isin(labels, kept))
    if len(orphans):
        sims = x[orphans] @ centroids.T
        near = sims.max(axis=1) >= cfg.novelty_threshold
        labels[orphans] = np.where(near, np.asarray(kept)[sims.argmax(axis=1)], -1)
    if cluster is not None:
        labels = split_by_cluster(x, labels, cluster, cfg, settle=not warm)
    members_of = [np.flatnonzero(labels == c) for c in np.unique(labels[labels >= 0])]
    clusters = [(m, unit(x[m].mean(axis=0))) for m in members_of]
    clusters.sort(key=lambda mc: (-len(mc[0]), int(mc[0][0])))
    ids = match_ids(
        [c for _, c in clusters],
        [[claim_ids[i] for i in m] for m, _ in clusters],
        previous.ids if previous else [],
        previous.centroids if previous else None,
        "discovered_",
        cfg.match_threshold,
    )
    return [(tid, m, c) for tid, (m, c) in zip(ids, clusters, strict=True)]


def split_by_cluster(
    x: np.ndarray, labels: np.ndarray, cluster: np.ndarray, cfg: ThemeConfig, settle: bool
) -> np.ndarray:
    """Labels with each theme cut into its parts in each broad cluster (-1 stays -1).

    A part of at least ``min_cluster_size`` claims is a theme; the claims of a smaller part
    join the nearest theme of their cluster unless novel next to every one. With ``settle``
    (a fresh fit), the claims first settle on the nearest theme of their own cluster (Lloyd
    steps, cosine to unit centroids): the rule the next night's warm start applies, so it
    finds them where they are. A warm start does not settle: its own hysteresis decided.
    """
    out = np.full(len(labels), -1, dtype=np.int64)
    placed = np.flatnonzero(labels >= 0)
    if not len(placed):
        return out
    key = labels[placed].astype(np.int64) * (int(cluster.max()) + 1) + cluster[placed]
    _, first, part, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    parts = np.flatnonzero(counts >= cfg.min_cluster_size)
    if not len(parts):
        return out
    big = np.isin(part, parts)
    home = cluster[placed[first[parts]]]  # each theme's cluster: that of its first claim
    foreign = cluster[placed][:, None] != home[None, :]
    column = np.where(big, np.searchsorted(parts, part), 0)  # theme column (small: unused)
    centroids = np.zeros((len(parts), x.shape[1]), dtype=np.float32)
    for _ in range(_SETTLE_STEPS if settle else 1):
        for j in np.unique(column[big]):
            centroids[j] = unit(x[placed[big & (column == j)]].mean(axis=0))
        sims = np.where(foreign, -2.0, x[placed] @ centroids.T)
        nearest = sims.argmax(axis=1)
        if not settle or np.array_equal(nearest[big], column[big]):
            break
        column = np.where(big, nearest, column)
    near = sims.max(axis=1) >= cfg.novelty_threshold
    out[placed] = np.where(big, parts[column], np.where(near, parts[nearest], -1))
    return out


_SETTLE_STEPS = 10


def keep_previous(
    labels: np.ndarray,
    sims: np.ndarray,
    top: np.ndarray,
    previous: Sequence[str | None],
    column: Mapping[str, int],
    stickiness: float,
) -> None:
    """Hysteresis: a claim keeps last night's theme unless another is closer by ``stickiness``.

    ``labels`` (theme columns of ``sims``) are changed in place; ``top`` is each row's best sim.
    """
    for i, prev in enumerate(previous):
        c = column.get(prev) if prev is not None else None
        if c is not None and sims[i, c] >= top[i] - stickiness:
            labels[i] = c


def match_ids(
    centroids: list[np.ndarray],
    members: list[list[str]],
    prev_ids: list[str],
    prev_centroids: np.ndarray | None,
    prefix: str,
    threshold: float,
) -> list[str]:
    """Keep a previous id for each cluster that matches a previous theme (Hungarian on cosine).

    Unmatched clusters get a new id derived from their members, so an id is never reused for
    a different theme.
    """
    ids = [prefix + stable_id("theme", *sorted(m), length=10) for m in members]
    if prev_centroids is None or not prev_ids or not centroids:
        return ids
    from scipy.optimize import linear_sum_assignment

    sims = np.stack(centroids) @ prev_centroids.T
    rows, cols = linear_sum_assignment(-sims)
    taken = set()
    for r, c in zip(rows, cols, strict=True):
        if sims[r, c] >= threshold:
            ids[r] = prev_ids[c]
            taken.add(prev_ids[c])
    for r, tid in enumerate(ids):  # a fresh id colliding with a retired one: derive another
        while tid in prev_ids and tid not in taken:
            tid = prefix + stable_id("theme", tid, length=10)
        ids[r] = tid
    return ids
