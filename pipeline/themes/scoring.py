"""Named-theme scores, the calibrated decision to assign one, and the evidence behind it.

For a claim and a named theme, the raw score blends three cosines (see docs/themes.md): the
mean of the claim's ``seed_top_k`` best seed phrases (or analyst examples), the seeds' centroid,
and the theme's description. The same claim's *background* score is the mean of its
``seed_top_k`` best background statements (ordinary news that belongs to no theme) or, for a
theme with ``not:`` examples, the closer of those.

Cosines of a real news sentence to short generic statements are low (mostly 0.2-0.5) and depend
on the corpus, so an absolute threshold alone does not transfer: a theme is assigned when it
wins over the other themes *and* over the background by ``background_margin``, with a low floor
``assign_threshold`` against text that is far from everything. Both scores are first mixed with
the claim's paragraph and document means, because a news paragraph develops one idea.

A document mostly about one named theme (at least ``document_prior_share`` of its claims take
it) also tips its close calls that way: the theme's score gets ``document_prior`` added when
choosing between themes, not when testing the floor and the background, so the prior decides
between fitting themes and never makes an off-theme claim fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.themes.base import group_ids, group_mean, group_means
from pipeline.themes.catalog import ThemeVectors
from pipeline.themes.config import ThemeConfig


@dataclass(frozen=True, slots=True)
class NamedScores:
    """Scores of claims against every named theme (columns in ``ThemeVectors.keys`` order)."""

    theme: np.ndarray  # (n, k) context-mixed theme scores
    background: np.ndarray  # (n, k) context-mixed background score against each theme
    nearest: np.ndarray  # (n, k) index of the nearest seed (``ThemeVectors.seeds[k]``)
    documents: np.ndarray  # (n,) dense document number per claim

    def decide(
        self, cfg: ThemeConfig, veto: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Best theme per claim, its score, whether it is assigned, and its margin.

        The margin is the chosen theme's score minus the runner-up's: the best other named
        theme or the background, whichever is higher (negative where the document prior
        decided a close call). ``veto`` (``(n, k)`` bool) rules themes out for some
        claims (an analyst's ``not:`` label).
        """
        n, k = self.theme.shape
        if k == 0 or n == 0:
            empty = np.zeros(n, dtype=np.float32)
            return np.zeros(n, np.int64), empty, np.zeros(n, bool), empty
        theme = self.theme if veto is None else np.where(veto, -2.0, self.theme)
        rows = np.arange(n)
        best = theme.argmax(axis=1)
        if cfg.document_prior:
            assigned = passes(theme[rows, best], self.background[rows, best], cfg)
            prior = cfg.document_prior * self._dominant(best, assigned, cfg)
            best = (theme + prior).argmax(axis=1)
        score = self.theme[rows, best]
        background = self.background[rows, best]
        others = theme.copy()
        others[rows, best] = -np.inf
        runner_up = np.maximum(others.max(axis=1), background) if k > 1 else background
        margin = score - runner_up
        assigned = passes(score, background, cfg)
        return best, score.astype(np.float32), assigned, margin.astype(np.float32)

    def _dominant(self, best: np.ndarray, assigned: np.ndarray, cfg: ThemeConfig) -> np.ndarray:
        """``(n, k)``: 1 where the theme is dominant among the *other* claims of the document."""
        n, k = self.theme.shape
        votes = np.zeros((n, k), dtype=np.float32)
        votes[np.flatnonzero(assigned), best[assigned]] = 1
        sizes = np.bincount(self.documents)
        totals = group_means(votes, self.documents, len(sizes)) * sizes[:, None]
        # Leave the claim itself out: its own vote must not tip its own call.
        others = sizes[self.documents] - 1
        share = (totals[self.documents] - votes) / np.maximum(others, 1)[:, None]
        top = share.max(axis=1, keepdims=True)
        dominant = (share >= top) & (share >= cfg.document_prior_share) & (others > 0)[:, None]
        out: np.ndarray = dominant.astype(np.float32)
        return out


def passes(score: np.ndarray, background: np.ndarray, cfg: ThemeConfig) -> np.ndarray:
    """Whether scores are high enough, and far enough above the background, to assign."""
    result: np.ndarray = (score >= cfg.assign_threshold) & (
        score - background >= cfg.background_margin
    )
    return result


def named_scores(
    embeddings: np.ndarray,
    doc_ids: Sequence[str],
    paragraphs: Sequence[int],
    vectors: ThemeVectors,
    cfg: ThemeConfig,
) -> NamedScores:
    """Context-mixed theme and background scores of consecutive claims (whole documents)."""
    theme, background, nearest = raw_scores(embeddings, vectors, cfg)
    mix = (cfg.context_weight, cfg.paragraph_share)
    return NamedScores(
        mix_context(theme, doc_ids, paragraphs, *mix),
        mix_context(background, doc_ids, paragraphs, *mix),
        nearest,
        group_ids(doc_ids),
    )


def raw_scores(
    embeddings: np.ndarray, vectors: ThemeVectors, cfg: ThemeConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per claim and theme: raw theme score, raw background score, nearest seed."""
    n, k = len(embeddings), len(vectors.keys)
    theme = np.zeros((n, k), dtype=np.float32)
    nearest = np.zeros((n, k), dtype=np.int32)
    total = cfg.seed_weight + cfg.centroid_weight + cfg.description_weight
    centroids = [vectors.centroid(j) for j in range(k)]
    for j in range(k):
        sims = embeddings @ vectors.seeds[j].T
        nearest[:, j] = sims.argmax(axis=1) if n else 0
        centroid = embeddings @ centroids[j]
        desc = embeddings @ vectors.descriptions[j]
        theme[:, j] = (
            cfg.seed_weight * _top_mean(sims, cfg.seed_top_k)
            + cfg.centroid_weight * centroid
            + cfg.description_weight * desc
        ) / total
    base = (
        _top_mean(embeddings @ vectors.background.T, cfg.seed_top_k)
        if vectors.background is not None and len(vectors.background)
        else np.full(n, -1.0, dtype=np.float32)
    )
    background = np.repeat(base[:, None], k, axis=1).astype(np.float32)
    for j, negatives in enumerate(vectors.negatives):
        if len(negatives):
            own = _top_mean(embeddings @ negatives.T, cfg.seed_top_k)
            background[:, j] = np.maximum(background[:, j], own)
    return theme, background, nearest


def _top_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row's ``k`` largest values (all of them when a row has fewer)."""
    k = min(k, sims.shape[1])
    if k == 0 or not len(sims):
        return np.zeros(len(sims), dtype=np.float32)
    top: np.ndarray = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:].mean(axis=1)
    return top.astype(np.float32)


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
