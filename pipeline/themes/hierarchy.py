"""The theme hierarchy: broad themes, discovered themes nested in named ones, retired themes.

Broad themes are clusters of documents; a discovered theme plainly about a named theme becomes
its child; themes of last night that did not come back are kept as retired rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.themes.base import ThemeInfo, unit
from pipeline.themes.config import ThemeConfig
from pipeline.themes.discovery import match_ids, search_k
from pipeline.themes.previous import PreviousThemes


def broad_themes(
    themes: list[ThemeInfo],
    doc_vectors: np.ndarray,
    doc_index: np.ndarray,
    named_means: Mapping[str, np.ndarray],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
) -> list[ThemeInfo]:
    """Broad themes: clusters of whole documents, into which the fine themes roll up.

    A broad theme is what an article is about (politics, sport…); fine themes are what its
    sentences say. Documents (the unit mean of their claim embeddings, ``doc_vectors``) are
    clustered with k from 2 to ``max_broad`` by silhouette; each fine or named theme joins the
    broad theme that holds most of its claims' documents. On later runs each document joins the
    nearest of last night's broad centroids instead (then each centroid moves to its documents'
    mean), so broad ids stay put. Sets ``parent_id`` on the fine and named themes and returns
    the broad ones.
    """
    discovered = [t for t in themes if t.kind == "discovered"]
    fine = [t for t in discovered if t.parent_id is None]  # not nested in a named theme
    n_docs = len(doc_vectors)
    if len(discovered) < 4 or not fine or n_docs < 3:
        return []
    if previous is not None and len(previous.broad_ids) >= 2:
        doc_cluster: np.ndarray | None = (doc_vectors @ previous.broad_centroids.T).argmax(axis=1)
    else:
        doc_cluster = search_k(doc_vectors, list(range(2, min(cfg.max_broad, n_docs - 1) + 1)), cfg)
    if doc_cluster is None:
        return []
    claim_cluster = doc_cluster[doc_index]

    def home(members: np.ndarray) -> int:
        # The cluster holding most of these claims' documents (ties: the lower cluster number).
        return int(np.bincount(claim_cluster[members]).argmax())

    fine_home = [home(t.member_idx) for t in fine]
    clusters = sorted(set(fine_home))
    centroids = [unit(doc_vectors[doc_cluster == c].mean(axis=0)) for c in clusters]
    ids = match_ids(
        centroids,
        [[t.theme_id for t, h in zip(fine, fine_home, strict=True) if h == c] for c in clusters],
        previous.broad_ids if previous else [],
        previous.broad_centroids if previous else None,
        "broad_",
        cfg.match_threshold,
    )
    id_of = dict(zip(clusters, ids, strict=True))
    for t, h in zip(fine, fine_home, strict=True):
        t.parent_id = id_of[h]
    for t in themes:
        if t.kind == "named" and len(t.member_idx):
            # A named theme whose documents sit in a cluster with no fine theme joins the
            # broad theme nearest to its claims instead.
            nearest = ids[int(np.argmax(np.stack(centroids) @ named_means[t.theme_id]))]
            t.parent_id = id_of.get(home(t.member_idx)) or nearest
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
