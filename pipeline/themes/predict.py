"""Themes for claims a fitted model did not see (``ThemeModel.predict``).

The rules of ``fit``, without refitting: a claim takes the named theme that passes the
calibrated decision; otherwise its document joins the nearest broad theme, and the claim the
nearest discovered theme of that broad theme, unless it is novel next to every one (then it is
``unassigned``). Nothing of the model changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.themes.base import (
    UNASSIGNED,
    ThemeInfo,
    document_context,
    group_ids,
    group_means,
    unit_rows,
)
from pipeline.themes.config import ThemeConfig
from pipeline.themes.scoring import named_scores
from pipeline.themes.source import ClaimSource

if TYPE_CHECKING:
    from pipeline.themes.model import ThemeModel


def predict_labels(model: ThemeModel, claims: ClaimSource) -> np.ndarray:
    """Primary theme id of each claim of ``claims``, in order."""
    if not hasattr(model, "themes_"):
        raise ValueError("this ThemeModel is not fitted yet: call fit first")
    cfg = model.config or ThemeConfig()
    keys = np.asarray(model.vectors.keys, dtype=object)
    fine = [t for t in model.themes_ if t.kind == "discovered" and t.centroid is not None]
    broad = [t for t in model.themes_ if t.kind == "broad" and t.centroid is not None]
    broad_ids = [t.theme_id for t in broad]
    parent = {t.theme_id: t.parent_id for t in model.themes_}

    def broad_of(theme_id: str) -> str | None:
        # Up the parents (a nested theme's parent is a named theme) to a broad theme.
        node: str | None = theme_id
        while node is not None and node not in broad_ids:
            node = parent.get(node)
        return node

    fine_ids = np.asarray([t.theme_id for t in fine], dtype=object)
    fine_home = np.asarray([broad_of(t.theme_id) or "" for t in fine], dtype=object)
    centroids = np.stack([_centroid(t) for t in fine]) if fine else None
    broad_centroids = np.stack([_centroid(t) for t in broad]) if broad else None
    out = []
    for chunk in claims():
        scored = named_scores(chunk.embeddings, chunk.doc_ids, chunk.paragraphs, model.vectors, cfg)
        best, _, named, _ = scored.decide(cfg)
        labels = np.where(named, keys[best] if len(keys) else UNASSIGNED, UNASSIGNED).astype(object)
        rest = np.flatnonzero(~named)
        if len(rest) and centroids is not None:
            space = document_context(chunk.embeddings, chunk.doc_ids, cfg.discovery_context_weight)
            sims = space[rest] @ centroids.T
            if broad_centroids is not None:
                groups = group_ids(chunk.doc_ids)
                docs = unit_rows(group_means(chunk.embeddings, groups, int(groups.max()) + 1))
                home = np.asarray(broad_ids, dtype=object)[
                    (docs @ broad_centroids.T).argmax(axis=1)
                ][groups[rest]]
                sims = np.where(fine_home[None, :] == home[:, None], sims, -2.0)
            pick = sims.argmax(axis=1)
            near = sims.max(axis=1) >= cfg.novelty_threshold
            labels[rest[near]] = fine_ids[pick[near]]
        out.append(labels)
    return np.concatenate(out) if out else np.zeros(0, dtype=object)


def _centroid(theme: ThemeInfo) -> np.ndarray:
    assert theme.centroid is not None  # filtered above
    return theme.centroid
