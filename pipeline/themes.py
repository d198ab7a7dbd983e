"""Themes: named themes from a catalog, plus themes discovered in the claims that fit none.

Assignment (see docs/themes.md):

1. Each named theme has seed phrases and a description. A claim's raw score for a theme blends
   its best cosine to a seed phrase, its cosine to the seeds' centroid and to the description.
2. Context: the raw scores are mixed with the mean scores of the claim's paragraph and document,
   because a news paragraph develops one idea and a sentence alone is often ambiguous.
3. A claim takes the best named theme if the score clears ``assign_threshold``. The rest are
   clustered (k-means, k chosen by silhouette); clusters smaller than ``min_cluster_size`` are
   ``unassigned`` rather than noise themes.
4. Keywords come from class-based TF-IDF (c-TF-IDF) over each theme's claims.

Everything is deterministic: inputs are used in the order given (callers sort them) and all
randomness goes through ``random_state``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.ids import stable_id

__all__ = [
    "UNASSIGNED",
    "NamedTheme",
    "ThemeCatalog",
    "ThemeConfig",
    "ThemeModel",
    "PreviousThemes",
    "ThemeVectors",
    "INPUTS_KEY",
    "assign_themes",
    "ctfidf_keywords",
    "theme_inputs_key",
    "load_catalog",
]

log = logging.getLogger(__name__)

UNASSIGNED: Final = "unassigned"
INPUTS_KEY: Final = b"docthemes.theme_inputs"


class NamedTheme(BaseModel):
    """One catalog entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    seed_phrases: list[str] = Field(min_length=1)


class ThemeCatalog(BaseModel):
    """The theme catalog file: ``version`` and a mapping of theme key to :class:`NamedTheme`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    themes: dict[str, NamedTheme] = Field(min_length=1)

    @field_validator("themes")
    @classmethod
    def _keys_are_ids(cls, themes: dict[str, NamedTheme]) -> dict[str, NamedTheme]:
        for key in themes:
            if not key.replace("_", "").isalnum() or not key.islower():
                raise ValueError(f"theme key {key!r} must be lower_snake_case")
            if key == UNASSIGNED or key.startswith("discovered_"):
                raise ValueError(f"theme key {key!r} is reserved")
        return themes


def load_catalog(path: str | Path | None = None) -> ThemeCatalog:
    """Load and validate a theme catalog (the packaged one when ``path`` is None).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        pydantic.ValidationError: If the file does not match the catalog schema.
    """
    if path is None:
        raw = resources.files("pipeline").joinpath("data/theme_catalog.yaml").read_text("utf-8")
    else:
        raw = Path(path).read_text(encoding="utf-8")
    return ThemeCatalog.model_validate(yaml.safe_load(raw))


class ThemeConfig(BaseModel):
    """Assignment and discovery settings; the defaults are documented in docs/themes.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assign_threshold: float = Field(0.45, ge=0, le=1)
    secondary_threshold: float = Field(0.5, ge=0, le=1)
    secondary_margin: float = Field(0.08, ge=0, le=1)
    max_secondary: int = Field(2, ge=0)
    seed_weight: float = Field(0.5, ge=0)
    centroid_weight: float = Field(0.25, ge=0)
    description_weight: float = Field(0.25, ge=0)
    context_weight: float = Field(0.4, ge=0, lt=1)
    paragraph_share: float = Field(0.7, ge=0, le=1)
    min_cluster_size: int = Field(3, ge=2)
    max_discovered: int = Field(40, ge=1)
    max_claims_per_theme: int = Field(2000, ge=10)
    discovery_context_weight: float = Field(0.5, ge=0, lt=1)
    max_broad: int = Field(12, ge=2)
    match_threshold: float = Field(0.8, ge=0, le=1)
    novelty_threshold: float = Field(0.35, ge=-1, le=1)
    novel_min_documents: int = Field(3, ge=1)
    stickiness: float = Field(0.03, ge=0, le=1)
    n_keywords: int = Field(8, ge=1)
    keyword_sample: int = Field(1000, ge=10)
    n_representatives: int = Field(5, ge=1)
    silhouette_sample: int = Field(3000, ge=100)
    search_sample: int = Field(5000, ge=100)
    random_state: int = 0


@dataclass(frozen=True, slots=True)
class ThemeVectors:
    """Embedded catalog: per theme, its seed phrase vectors and description vector."""

    keys: list[str]
    seeds: list[np.ndarray]
    descriptions: np.ndarray  # (n_themes, dim)

    @classmethod
    def from_catalog(cls, catalog: ThemeCatalog, embed: Any) -> ThemeVectors:
        """Embed the catalog with ``embed(texts) -> (n, dim)`` normalised vectors."""
        keys = sorted(catalog.themes)
        # The label is itself a short seed phrase ("Energy axis"), often used verbatim in text.
        phrases = [[catalog.themes[k].label, *catalog.themes[k].seed_phrases] for k in keys]
        descriptions = [catalog.themes[k].description for k in keys]
        # One call for the whole catalog: each call is a cache lookup.
        vectors = np.asarray(embed([p for ps in phrases for p in ps] + descriptions), np.float32)
        bounds = np.cumsum([0] + [len(ps) for ps in phrases])
        seeds = [vectors[bounds[i] : bounds[i + 1]] for i in range(len(keys))]
        desc = vectors[bounds[-1] :]
        return cls(keys, seeds, desc)


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


class ThemeModel:
    """Assign claims to named themes and discover the others (scikit-learn style).

    Args:
        vectors: The embedded catalog.
        config: Thresholds and weights.

    Attributes (after ``fit``):
        labels_: Primary theme id per claim.
        scores_: Primary score per claim.
        named_scores_: ``(n, n_named)`` context-mixed scores per named theme.
        themes_: :class:`ThemeInfo` per theme, named first (catalog order), then discovered.
    """

    def __init__(self, vectors: ThemeVectors, config: ThemeConfig | None = None) -> None:
        """Store parameters only; all work happens in :meth:`fit`."""
        self.vectors = vectors
        self.config = config

    def fit(
        self,
        embeddings: np.ndarray,
        texts: Sequence[str],
        doc_ids: Sequence[str],
        paragraphs: Sequence[int],
        claim_ids: Sequence[str],
        previous: PreviousThemes | None = None,
    ) -> ThemeModel:
        """Assign every claim a primary theme.

        Args:
            embeddings: ``(n, dim)`` L2-normalised claim embeddings.
            texts: Claim texts (for keywords).
            doc_ids: Document of each claim.
            paragraphs: Paragraph number of each claim within its document.
            claim_ids: Claim ids (discovered theme ids derive from their members).
            previous: The last run's themes; their ids are kept for the same themes.
        """
        cfg = self.config or ThemeConfig()
        n = len(texts)
        raw = self._raw_scores(embeddings, cfg)
        scores = _mix_context(raw, doc_ids, paragraphs, cfg.context_weight, cfg.paragraph_share)
        self.named_scores_ = scores
        best = scores.argmax(axis=1) if n else np.zeros(0, dtype=int)
        best_score = scores[np.arange(n), best] if n else np.zeros(0, dtype=np.float32)
        labels = np.array([self.vectors.keys[b] for b in best], dtype=object)
        named_mask = best_score >= cfg.assign_threshold
        labels[~named_mask] = UNASSIGNED
        final_scores = best_score.astype(np.float32).copy()

        themes: list[ThemeInfo] = []
        for k, key in enumerate(self.vectors.keys):
            themes.append(ThemeInfo(key, key, "named", np.flatnonzero(labels == key)))
            themes[-1].centroid = _unit(self.vectors.seeds[k].mean(axis=0))

        rest = np.flatnonzero(~named_mask)
        space = _document_context(embeddings, doc_ids, cfg.discovery_context_weight)
        rest_ids = [claim_ids[int(i)] for i in rest]
        known = previous.assignments if previous else {}
        prev_labels: list[str | None] = [known.get(c) for c in rest_ids]
        rest_docs = [doc_ids[int(i)] for i in rest]
        fine = _fine_themes(space[rest], rest_ids, rest_docs, prev_labels, cfg, previous)
        for theme_id, members, centroid in fine:
            idx = rest[members]
            labels[idx] = theme_id
            final_scores[idx] = space[idx] @ centroid
            themes.append(ThemeInfo(theme_id, theme_id, "discovered", idx, centroid))
        themes += _broad_themes(themes, embeddings, doc_ids, cfg, previous)
        self.retired_ = _retired(themes, previous)
        themes.append(
            ThemeInfo(UNASSIGNED, "Unassigned", UNASSIGNED, np.flatnonzero(labels == UNASSIGNED))
        )
        # Keywords from at most `keyword_sample` claims per theme, evenly spread: their cost
        # stays bounded as the corpus grows night after night (a broad theme would otherwise
        # re-read every claim of its children).
        keywords = ctfidf_keywords(
            [" ".join(texts[i] for i in _spread(t.member_idx, cfg.keyword_sample)) for t in themes],
            cfg.n_keywords,
        )
        for theme, kw in zip(themes, keywords, strict=True):
            theme.keywords = kw
            if theme.kind in ("discovered", "broad"):
                theme.label = " / ".join(kw[:3]) if kw else theme.theme_id
            if theme.centroid is not None and len(theme.member_idx):
                vectors = space if theme.kind in ("discovered", "broad") else embeddings
                sims = vectors[theme.member_idx] @ theme.centroid
                order = np.argsort(-_ranking(sims), kind="stable")[: cfg.n_representatives]
                theme.representatives = [int(theme.member_idx[o]) for o in order]
                if theme.kind in ("discovered", "broad"):
                    theme.coherence = float(sims.mean())
                else:
                    member_centroid = _unit(embeddings[theme.member_idx].mean(axis=0))
                    theme.coherence = float((embeddings[theme.member_idx] @ member_centroid).mean())
        self.labels_ = labels
        self.scores_ = final_scores
        self.themes_ = themes
        return self

    def secondary(self) -> list[list[tuple[str, float]]]:
        """Per claim, named themes other than the primary that also fit, best first."""
        cfg = self.config or ThemeConfig()
        scores = self.named_scores_
        if not len(scores) or not scores.shape[1] or cfg.max_secondary == 0:
            return [[] for _ in range(len(scores))]
        keys = np.asarray(self.vectors.keys, dtype=object)
        top = scores.max(axis=1, keepdims=True)
        fits = (
            (scores >= cfg.secondary_threshold)
            & (scores >= top - cfg.secondary_margin)
            & (keys[None, :] != np.asarray(self.labels_, dtype=object)[:, None])
        )
        # Rounded scores and a stable sort: cached and fresh embeddings differ by ~1e-7.
        order = np.argsort(-_ranking(scores), axis=1, kind="stable")
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(scores))]
        for i in np.flatnonzero(fits.any(axis=1)):
            picks = [(str(keys[j]), float(scores[i, j])) for j in order[i] if fits[i, j]]
            out[i] = picks[: cfg.max_secondary]
        return out

    def _raw_scores(self, embeddings: np.ndarray, cfg: ThemeConfig) -> np.ndarray:
        total = cfg.seed_weight + cfg.centroid_weight + cfg.description_weight
        cols = []
        for k in range(len(self.vectors.keys)):
            seed_sims = embeddings @ self.vectors.seeds[k].T
            seed_max = seed_sims.max(axis=1) if len(embeddings) else np.zeros(0)
            centroid = embeddings @ _unit(self.vectors.seeds[k].mean(axis=0))
            desc = embeddings @ self.vectors.descriptions[k]
            cols.append(
                (
                    cfg.seed_weight * seed_max
                    + cfg.centroid_weight * centroid
                    + cfg.description_weight * desc
                )
                / total
            )
        return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((len(embeddings), 0))


def _ranking(scores: np.ndarray) -> np.ndarray:
    """Scores rounded for ordering decisions.

    Embeddings from the cache were computed in other batches than a fresh run's, which moves
    float32 results by ~1e-7; near-ties must then break by position (a stable sort), not noise.
    """
    rounded: np.ndarray = np.round(scores.astype(np.float64), 4)
    return rounded


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


def _mix_context(
    raw: np.ndarray,
    doc_ids: Sequence[str],
    paragraphs: Sequence[int],
    weight: float,
    paragraph_share: float,
) -> np.ndarray:
    """Blend each claim's scores with its paragraph's and document's mean scores."""
    if weight == 0 or len(raw) == 0:
        return raw
    docs = _group_ids(doc_ids)
    paras = _group_ids(list(zip(doc_ids, paragraphs, strict=True)))
    doc_mean = _group_mean(raw, docs)
    para_mean = _group_mean(raw, paras)
    context = paragraph_share * para_mean + (1 - paragraph_share) * doc_mean
    mixed: np.ndarray = (1 - weight) * raw + weight * context
    return mixed.astype(np.float32)


def _group_ids(keys: Sequence[Any]) -> np.ndarray:
    """Dense group number per item (numbered by first appearance)."""
    ids: dict[Any, int] = {}
    return np.fromiter((ids.setdefault(k, len(ids)) for k in keys), dtype=np.int64, count=len(keys))


def _group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row replaced by the mean of its group's rows (float32, as the embeddings)."""
    means: np.ndarray = _group_means(values, groups, int(groups.max()) + 1)[groups]
    return means


@dataclass(frozen=True, slots=True)
class PreviousThemes:
    """The last run's discovered and broad themes, read back from its published tables."""

    ids: list[str]
    centroids: np.ndarray
    broad_ids: list[str]
    broad_centroids: np.ndarray
    rows: dict[str, dict[str, Any]]
    assignments: dict[str, str]

    @classmethod
    def from_rows(
        cls, themes: Sequence[dict[str, Any]], primaries: Mapping[str, str]
    ) -> PreviousThemes | None:
        """Build from `themes` rows and each claim's previous primary theme."""
        active = [r for r in themes if r["status"] == "active" and r["centroid"] is not None]
        fine = [r for r in active if r["kind"] == "discovered"]
        broad = [r for r in active if r["kind"] == "broad"]
        if not fine and not broad:
            return None

        def stack(rows: list[dict[str, Any]]) -> np.ndarray:
            if not rows:
                return np.zeros((0, 0), dtype=np.float32)
            return np.asarray([r["centroid"] for r in rows], dtype=np.float32)

        known = {r["theme_id"] for r in fine}
        return cls(
            [r["theme_id"] for r in fine],
            stack(fine),
            [r["theme_id"] for r in broad],
            stack(broad),
            {r["theme_id"]: dict(r) for r in themes if r["kind"] in ("discovered", "broad")},
            {c: t for c, t in primaries.items() if t in known},
        )


def _document_context(embeddings: np.ndarray, doc_ids: Sequence[str], weight: float) -> np.ndarray:
    """Claim vectors pulled towards their document's mean: the space discovery clusters in.

    A news sentence alone often says little about its topic ("He said it was a good result");
    its article does.
    """
    if weight == 0 or len(embeddings) == 0:
        return embeddings
    mixed = _group_mean(embeddings, _group_ids(doc_ids))
    # In place: these arrays are (claims x dim); every temporary costs a pass over memory.
    mixed *= weight
    mixed += (1 - weight) * embeddings
    norms = np.sqrt(np.einsum("ij,ij->i", mixed, mixed))
    mixed /= np.maximum(norms, 1e-12)[:, None]
    return mixed


def _kmeans(x: np.ndarray, k: int, cfg: ThemeConfig, n_init: int | None = None) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(x) > 5000:
        km: Any = MiniBatchKMeans(
            n_clusters=k, random_state=cfg.random_state, n_init=n_init or 3, batch_size=4096
        )
    else:
        km = KMeans(n_clusters=k, random_state=cfg.random_state, n_init=n_init or 4)
    labels: np.ndarray = km.fit_predict(x)
    return labels


def _search_k(x: np.ndarray, ks: list[int], cfg: ThemeConfig) -> np.ndarray | None:
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
    # distances computed once for every k instead of once per k: the same scores, bit for bit,
    # in 40% of the time.
    scored = np.random.RandomState(cfg.random_state).permutation(len(sample))
    scored = scored[: min(len(sample), cfg.silhouette_sample)]
    distances = cosine_distances(sample[scored])
    best: tuple[float, int, np.ndarray] | None = None
    for k in ks:
        labels = _kmeans(sample, k, cfg, n_init=1 if sampled else None)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(distances, labels[scored], metric="precomputed"))
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    if best is None:
        return None
    return _kmeans(x, best[1], cfg) if sampled else best[2]


def _k_grid(n: int, cfg: ThemeConfig) -> list[int]:
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


def _fine_themes(
    x: np.ndarray,
    claim_ids: list[str],
    doc_ids: list[str],
    prev_labels: list[str | None],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Discovered themes: (theme_id, member indices into ``x``, unit centroid), largest first."""
    n = len(x)
    n_distinct = _count_distinct(x)
    if n_distinct < 2 or n < 2 * cfg.min_cluster_size:
        return []
    labels: np.ndarray | None
    if previous is not None and len(previous.ids) >= 1 and len(previous.ids) < n_distinct:
        # Warm start: assign to last night's centroids, then move each centroid once to the mean
        # of its claims (one Lloyd step per night). Themes follow the data gradually instead of
        # being re-drawn by a fresh k-means, which would move boundary claims between ids.
        k = len(previous.ids)
        prev_sims = x @ previous.centroids.T
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
                _unit(x[labels == c].mean(axis=0)) if (labels == c).any() else previous.centroids[c]
                for c in range(k)
            ]
        )
        sims = x @ centroids.T
        best = sims.max(axis=1)
        column = {tid: c for c, tid in enumerate(previous.ids)}
        for i, prev in enumerate(prev_labels):
            # Hysteresis: a claim keeps its theme unless another is clearly closer.
            c = column.get(prev) if prev is not None else None
            if c is not None and labels[i] >= 0 and sims[i, c] >= best[i] - cfg.stickiness:
                labels[i] = c
        if len(novel) >= 2 * cfg.min_cluster_size:
            sub = _search_k(x[novel], _k_grid(len(novel), cfg), cfg)
            if sub is not None:
                labels[novel] = k + sub
                # One new article is not a new theme: a novel cluster must recur across
                # documents, else its claims stay unassigned until more articles join them.
                for c in np.unique(sub):
                    members = novel[sub == c]
                    if len({doc_ids[i] for i in members}) < cfg.novel_min_documents:
                        labels[members] = -1
    else:
        labels = _search_k(x, _k_grid(min(n, n_distinct), cfg), cfg)
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
    centroids = np.stack([_unit(x[labels == c].mean(axis=0)) for c in kept])
    orphans = np.flatnonzero((labels >= 0) & ~np.isin(labels, kept))
    if len(orphans):
        sims = x[orphans] @ centroids.T
        near = sims.max(axis=1) >= cfg.novelty_threshold
        labels[orphans] = np.where(near, np.asarray(kept)[sims.argmax(axis=1)], -1)
    members_of = [np.flatnonzero(labels == c) for c in kept]
    clusters = [(m, _unit(x[m].mean(axis=0))) for m in members_of]
    clusters.sort(key=lambda mc: (-len(mc[0]), int(mc[0][0])))
    ids = _match_ids(
        [c for _, c in clusters],
        [[claim_ids[i] for i in m] for m, _ in clusters],
        previous.ids if previous else [],
        previous.centroids if previous else None,
        "discovered_",
        cfg.match_threshold,
    )
    return [(tid, m, c) for tid, (m, c) in zip(ids, clusters, strict=True)]


def _match_ids(
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


def _broad_themes(
    themes: list[ThemeInfo],
    embeddings: np.ndarray,
    doc_ids: Sequence[str],
    cfg: ThemeConfig,
    previous: PreviousThemes | None,
) -> list[ThemeInfo]:
    """Broad themes: clusters of whole documents, into which the fine themes roll up.

    A broad theme is what an article is about (politics, sport…); fine themes are what its
    sentences say. Documents (the mean of their claim embeddings) are clustered with k from 2 to
    ``max_broad`` by silhouette; each fine or named theme joins the broad theme that holds most
    of its claims' documents. On later runs each document joins the nearest of last night's
    broad centroids instead (then each centroid moves to its documents' mean), so broad ids
    stay put. Sets ``parent_id`` on the fine and named themes and returns the broad ones.
    """
    fine = [t for t in themes if t.kind == "discovered"]
    groups = _group_ids(doc_ids)
    n_docs = int(groups.max()) + 1 if len(groups) else 0
    if len(fine) < 4 or n_docs < 3:
        return []
    doc_vecs = _unit_rows(np.asarray(_group_means(embeddings, groups, n_docs)))
    if previous is not None and len(previous.broad_ids) >= 2:
        doc_cluster: np.ndarray | None = (doc_vecs @ previous.broad_centroids.T).argmax(axis=1)
    else:
        doc_cluster = _search_k(doc_vecs, list(range(2, min(cfg.max_broad, n_docs - 1) + 1)), cfg)
    if doc_cluster is None:
        return []
    claim_cluster = doc_cluster[groups]

    def home(members: np.ndarray) -> int:
        # The cluster holding most of these claims' documents (ties: the lower cluster number).
        return int(np.bincount(claim_cluster[members]).argmax())

    fine_home = [home(t.member_idx) for t in fine]
    clusters = sorted(set(fine_home))
    centroids = [_unit(doc_vecs[doc_cluster == c].mean(axis=0)) for c in clusters]
    ids = _match_ids(
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
            h = home(t.member_idx)
            # A named theme whose documents sit in a cluster with no fine theme joins the
            # broad theme nearest to its claims instead.
            t.parent_id = (
                id_of.get(h)
                or ids[
                    int(
                        np.argmax(
                            np.stack(centroids) @ _unit(embeddings[t.member_idx].mean(axis=0))
                        )
                    )
                ]
            )
    broad = []
    for tid, centroid in zip(ids, centroids, strict=True):
        children = [t.member_idx for t in themes if t.parent_id == tid]
        members = np.sort(np.concatenate(children)) if children else np.zeros(0, dtype=np.int64)
        broad.append(ThemeInfo(tid, tid, "broad", members, centroid))
    return broad


def _group_means(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean row per group, one row per group."""
    from scipy.sparse import csr_matrix

    counts = np.bincount(groups, minlength=n_groups).astype(np.float32)
    member = csr_matrix(
        (1 / counts[groups], (groups, np.arange(len(groups)))), shape=(n_groups, len(groups))
    )
    means: np.ndarray = np.asarray(member @ np.asarray(values, dtype=np.float32))
    return means


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    out: np.ndarray = (x / np.maximum(norms, 1e-12)[:, None]).astype(np.float32)
    return out


def _retired(themes: list[ThemeInfo], previous: PreviousThemes | None) -> list[dict[str, Any]]:
    """Previous discovered/broad themes that did not come back: kept as rows, marked retired."""
    if previous is None:
        return []
    alive = {t.theme_id for t in themes}
    return [
        {**row, "status": "retired", "n_claims": 0, "representative_claim_ids": []}
        for tid, row in sorted(previous.rows.items())
        if tid not in alive
    ]


def _spread(members: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` members, evenly spaced in order (deterministic)."""
    if len(members) <= limit:
        return members
    picked: np.ndarray = members[np.linspace(0, len(members) - 1, limit).round().astype(int)]
    return picked


def ctfidf_keywords(class_texts: Sequence[str], top_n: int = 8) -> list[list[str]]:
    """Class-based TF-IDF keywords: one document per class, terms ranked per class.

    Weight of term t in class c: ``tf(t, c) / |c| * log(1 + A / f(t))`` where ``|c|`` is the
    class's word count, ``A`` the mean word count per class and ``f(t)`` the term's frequency
    over all classes (as in BERTopic's c-TF-IDF).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    if not any(t.strip() for t in class_texts):
        return [[] for _ in class_texts]
    vectorizer = CountVectorizer(
        stop_words="english", token_pattern=r"(?u)\b[^\W\d_][\w’'-]+\b", lowercase=True
    )
    try:
        counts = vectorizer.fit_transform(class_texts).toarray().astype(np.float64)
    except ValueError:  # only stop words
        return [[] for _ in class_texts]
    terms = vectorizer.get_feature_names_out()
    words_per_class = counts.sum(axis=1, keepdims=True)
    tf = np.divide(counts, words_per_class, out=np.zeros_like(counts), where=words_per_class > 0)
    avg = counts.sum() / max(1, (words_per_class > 0).sum())
    idf = np.log(1 + avg / np.maximum(counts.sum(axis=0), 1))
    weights = tf * idf
    result = []
    for row in weights:
        order = np.lexsort((terms, -row))  # ties broken alphabetically, for determinism
        result.append([str(terms[j]) for j in order[:top_n] if row[j] > 0])
    return result


def assign_themes(
    model: ThemeModel,
    catalog: ThemeCatalog,
    claim_ids: Sequence[str],
    doc_ids: Sequence[str],
    doc_dates: Mapping[str, dt.date] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Turn a fitted model into rows for the four theme tables.

    The tables are `themes`, `claim_themes`, `document_themes` and `theme_trends`.

    Args:
        model: A fitted :class:`ThemeModel`.
        catalog: The catalog (labels and descriptions of named themes).
        claim_ids: Claim ids in the order the model was fitted on.
        doc_ids: Document of each claim.
        doc_dates: Each document's date (published, else ingested) for trends and first/last seen.
    """
    dates = doc_dates or {}
    themes_rows = []
    for t in model.themes_:
        named = catalog.themes.get(t.theme_id)
        seen = sorted({dates[doc_ids[i]] for i in t.member_idx if doc_ids[i] in dates})
        themes_rows.append(
            {
                "theme_id": t.theme_id,
                "label": named.label if named else t.label,
                "kind": t.kind,
                "keywords": t.keywords,
                "n_claims": len(t.member_idx),
                "description": named.description if named else _keyword_description(t),
                "parent_id": t.parent_id,
                "representative_claim_ids": [claim_ids[i] for i in t.representatives],
                "coherence": t.coherence,
                "status": "active",
                "first_seen": seen[0] if seen else None,
                "last_seen": seen[-1] if seen else None,
                "centroid": t.centroid.tolist()
                if t.centroid is not None and t.kind != "named"
                else None,
            }
        )
    themes_rows += model.retired_
    claim_rows = []
    for i, extra in enumerate(model.secondary()):
        claim_rows.append(
            {
                "claim_id": claim_ids[i],
                "theme_id": str(model.labels_[i]),
                "score": float(model.scores_[i]),
                "rank": 1,
            }
        )
        for rank, (theme_id, score) in enumerate(extra, start=2):
            claim_rows.append(
                {"claim_id": claim_ids[i], "theme_id": theme_id, "score": score, "rank": rank}
            )
    parents = {t.theme_id: t.parent_id for t in model.themes_}
    return {
        "themes": themes_rows,
        "claim_themes": claim_rows,
        "document_themes": _document_mix(doc_ids, list(model.labels_)),
        "theme_trends": _trends(doc_ids, list(model.labels_), parents, dates),
    }


def _trends(
    doc_ids: Sequence[str],
    labels: Sequence[str],
    parents: Mapping[str, str | None],
    dates: Mapping[str, dt.date],
) -> list[dict[str, Any]]:
    """Claims and documents per theme and day; broad themes aggregate their children."""
    claims: dict[tuple[str, dt.date], int] = {}
    docs: dict[tuple[str, dt.date], set[str]] = {}
    per_day: dict[dt.date, int] = {}
    for doc, label in zip(doc_ids, labels, strict=True):
        day = dates.get(doc)
        if day is None:
            continue
        per_day[day] = per_day.get(day, 0) + 1
        for theme in (label, parents.get(label)):
            if theme is not None:
                claims[(theme, day)] = claims.get((theme, day), 0) + 1
                docs.setdefault((theme, day), set()).add(doc)
    return [
        {
            "theme_id": theme,
            "date": day,
            "n_claims": n,
            "n_documents": len(docs[(theme, day)]),
            "share": n / per_day[day],
        }
        for (theme, day), n in sorted(claims.items())
    ]


def theme_inputs_key(
    claim_ids: Sequence[str],
    doc_dates: Mapping[str, dt.date],
    catalog: ThemeCatalog,
    config: ThemeConfig,
    model_key: str,
) -> str:
    """Hash of everything the theme tables are computed from (claims, dates, settings, model).

    Claim ids hash their text and document, so equal keys mean equal inputs.
    """
    from pipeline.manifest import PIPELINE_VERSION

    h = hashlib.sha256()
    for part in (
        PIPELINE_VERSION,
        "\n".join(sorted(claim_ids)),
        "\n".join(f"{d}\t{doc_dates[d].isoformat()}" for d in sorted(doc_dates)),
        catalog.model_dump_json(),
        config.model_dump_json(),
        model_key,
    ):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def _keyword_description(theme: ThemeInfo) -> str | None:
    if theme.kind == "broad":
        return f"Broad theme grouping related themes; keywords: {', '.join(theme.keywords)}"
    if theme.kind == UNASSIGNED:
        return "Claims that fit no named theme and no discovered theme large enough to keep."
    return f"Discovered theme; keywords: {', '.join(theme.keywords)}" if theme.keywords else None


def _document_mix(doc_ids: Sequence[str], labels: Sequence[str]) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, int]] = {}
    for doc, label in zip(doc_ids, labels, strict=True):
        per_doc = counts.setdefault(doc, {})
        per_doc[label] = per_doc.get(label, 0) + 1
    rows = []
    for doc in sorted(counts):
        total = sum(counts[doc].values())
        for theme_id in sorted(counts[doc]):
            n = counts[doc][theme_id]
            rows.append({"doc_id": doc, "theme_id": theme_id, "share": n / total, "n_claims": n})
    return rows
