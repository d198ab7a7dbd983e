"""scoring."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.themes.base import group_ids, group_mean


def mix_context(
    raw: np.ndarray,
    doc_ids: Sequence[str],
    paragraphs: Sequence[int],
    weight: float,
    paragraph_share: float,
) -> np.ndarray:
    """Blend each claim's scores with its paragraph's and document's mean scores."""
    if weight == 0 or len(raw) == 0:
        return raw
    docs = group_ids(doc_ids)
    paras = group_ids(list(zip(doc_ids, paragraphs, strict=True)))
    doc_mean = group_mean(raw, docs)
    para_mean = group_mean(raw, paras)
    context = paragraph_share * para_mean + (1 - paragraph_share) * doc_mean
    mixed: np.ndarray = (1 - weight) * raw + weight * context
    return mixed.astype(np.float32)
