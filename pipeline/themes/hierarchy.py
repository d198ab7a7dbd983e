"""The theme hierarchy: broad themes, discovered themes nested in named ones, retired themes.

Broad themes are clusters of documents, made before discovery (which runs inside each); a
discovered theme plainly about a named theme becomes its child; themes of last night that did
not come back are kept as retired rows.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.themes.base import ThemeInfo, unit
from pipeline.themes.config import ThemeConfig
from pipeline.themes.discovery import keep_previous, match_ids, search_k
from pipeline.themes.previous import PreviousThemes


def document_clusters(
    doc_vectors: np.ndarray,
    doc_of: np.ndarray,
    prev_labels: Sequence[str | None],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
) -> np.ndarray | None:
    """Each document's broad cluster, or None when the corpus is too small for clusters.

    Documents (the unit mean of their claim embeddings) are clustered with k from 2 to
    ``max_broad`` by silhouette. On later runs each document joins the nearest of last
    night's broad centroids instead (cluster ``c`` is ``previous.broad_ids[c]``), keeping last
    night's cluster unless another is closer by ``stickiness``: a document that changed
    cluster would move every one of its claims to other fine themes. Last night's cluster is
    read from ``prev_labels``, the previous fine themes of some claims (of documents
    ``doc_of``).
    """
    n_docs = len(doc_vectors)
    if n_docs < 3:
        return None
    if previous is not None and len(previous.broad_ids) >= 2:
        prev_broad = previous_broad(doc_of, prev_labels, n_docs, previous)
        sims = doc_vectors @ previous.broad_centroids.T
        labels: np.ndarray = sims.argmax(axis=1)
        column = {tid: c for c, tid in enumerate(previous.broad_ids)}
        keep_previous(labels, sims, sims.max(axis=1), prev_broad, column, cfg.stickiness)
        return labels
    return search_k(doc_vectors, list(range(2, min(cfg.max_broad, n_docs - 1) + 1)), cfg)


def previous_broad(
    doc_of: np.ndarray, prev_labels: Sequence[str | None], n_docs: int, previous: PreviousThemes
) -> list[str | None]:
    """Each document's broad theme last night: that of most of its claims' fine themes."""
    votes: list[collections.Counter[str]] = [collections.Counter() for _ in range(n_docs)]
    for d, label in zip(doc_of, prev_labels, strict=True):
        parent = previous.rows.get(label, {}).get("parent_id") if label is not None else None
        if parent in previous.broad_ids:
            votes[int(d)][str(parent)] += 1
    return [min(v, key=lambda k: (-v[k], k)) if v else None for v in votes]


def broad_themes(
    themes: list[ThemeInfo],
    doc_cluster: np.ndarray,
    doc_vectors: np.ndarray,
    doc_index: np.ndarray,
    doc_ids: Sequence[str],
    fine_cluster: Mapping[str, int],
    named_means: Mapping[str, np.ndarray],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
) -> list[ThemeInfo]:
    """Broad themes: the document clusters, with the fine and named themes rolled up into them.

    A broad theme is what an article is about (politics, sport…); fine themes are what its
    sentences say, found inside one cluster (``fine_cluster``), whose broad theme becomes
    their parent. A named theme joins the cluster holding most of its claims' documents.
    Broad ids follow last night's by centroid. Sets ``parent_id`` on the fine and named
    themes and returns the broad ones; none for corpora with fewer than 4 discovered themes.
    """
    discovered = [t for t in themes if t.kind == "discovered"]
    fine = [t for t in discovered if t.parent_id is None]  # not nested in a named theme
    if len(discovered) < 4 or not fine:
        return []
    claim_cluster = doc_cluster[doc_index]

    def home(members: np.ndarray) -> int:
        # The cluster holding most of these claims' documents (ties: the lower cluster number).
        return int(np.bincount(claim_cluster[members]).argmax())

    named = [t for t in themes if t.kind == "named" and len(t.member_idx)]
    named_home = [home(t.member_idx) for t in named]
    clusters = sorted({fine_cluster[t.theme_id] for t in fine} | set(named_home))
    centroids = [unit(doc_vectors[doc_cluster == c].mean(axis=0)) for c in clusters]
    ids = match_ids(
        centroids,
        [[doc_ids[int(d)] for d in np.flatnonzero(doc_cluster == c)] for c in clusters],
        previous.broad_ids if previous else [],
        previous.broad_centroids if previous else None,
        "broad_",
        cfg.match_threshold,
    )
    id_of = dict(zip(clusters, ids, strict=True))
    for t in fine:
        t.parent_id = id_of[fine_cluster[t.theme_id]]
    for t, h in zip(named, named_home, strict=True):
        t.parent_id = id_of[h]
    parent_of = {t.theme_id: t.parent_id for t in themes}

    def root(theme_id: str) -> str:
        while parent_of.get(theme_id) is not None:
            theme_id = str(parent_of[theme_id])
        return theme_id

    broad = []
    for tid, centroid in zip(ids, centroids, strict=True):
        # A broad theme holds its children's claims and those of the themes nested in them.
        children = [t.member_idx for t in themes if t.parent_id and root(t.theme_id) == tid]
        members = np.sort(np.concatenate(children)) if children else np.zeros(0, dtype=np.int64)
        broad.append(ThemeInfo(tid, tid, "broad", members, centroid))
    return broad


def retired_rows(themes: list[ThemeInfo], previous: PreviousThemes | None) -> list[dict[str, Any]]:
    """Previous discovered/broad themes that did not come back: kept as rows, marked retired."""
    if previous is None:
        return []
    alive = {t.theme_id for t in themes}
    return [
        {**row, "status": "retired", "n_claims": 0, "representative_claim_ids": []}
        for tid, row in sorted(previous.rows.items())
        if tid not in alive
    ]


def nest_in_named(
    themes: list[ThemeInfo], named_scores: np.ndarray, background: np.ndarray, cfg: ThemeConfig
) -> None:
    """Make each discovered theme that is plainly about a named theme that theme's child.

    Its claims each fell short of the named theme on their own, but a cluster whose claims
    clear that theme's background on average (by ``nest_margin``) and reach its score floor
    is a facet of it ("oil / drilling" inside the energy theme), not a theme beside it. Sets
    ``parent_id`` to the named theme; the claims keep the discovered theme as primary.
    """
    named = [t for t in themes if t.kind == "named"]
    if not named:
        return
    for theme in themes:
        if theme.kind != "discovered" or not len(theme.member_idx):
            continue
        scores = named_scores[theme.member_idx]
        lead = (scores - background[theme.member_idx]).mean(axis=0)
        j = int(np.argmax(lead))
        if lead[j] >= cfg.nest_margin and scores[:, j].mean() >= cfg.assign_threshold:
            theme.parent_id = named[j].theme_id
