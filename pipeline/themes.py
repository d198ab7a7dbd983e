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

import logging
from collections.abc import Sequence
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
    "ThemeVectors",
    "assign_themes",
    "ctfidf_keywords",
    "load_catalog",
]

log = logging.getLogger(__name__)

UNASSIGNED: Final = "unassigned"


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
    max_discovered: int = Field(30, ge=1)
    n_keywords: int = Field(8, ge=1)
    n_representatives: int = Field(5, ge=1)
    silhouette_sample: int = Field(3000, ge=100)
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
        seeds = [
            np.asarray(
                embed([catalog.themes[k].label, *catalog.themes[k].seed_phrases]), dtype=np.float32
            )
            for k in keys
        ]
        desc = np.asarray(embed([catalog.themes[k].description for k in keys]), dtype=np.float32)
        return cls(keys, seeds, desc)


@dataclass(slots=True)
class ThemeInfo:
    """A theme row before it becomes a table row."""

    theme_id: str
    label: str
    kind: str
    description: str | None
    member_idx: np.ndarray
    centroid: np.ndarray | None = None
    keywords: list[str] = field(default_factory=list)
    representatives: list[int] = field(default_factory=list)
    coherence: float | None = None


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
    ) -> ThemeModel:
        """Assign every claim a primary theme.

        Args:
            embeddings: ``(n, dim)`` L2-normalised claim embeddings.
            texts: Claim texts (for keywords).
            doc_ids: Document of each claim.
            paragraphs: Paragraph number of each claim within its document.
            claim_ids: Claim ids (discovered theme ids derive from their members).
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
            themes.append(ThemeInfo(key, key, "named", None, np.flatnonzero(labels == key)))
            themes[-1].centroid = _unit(self.vectors.seeds[k].mean(axis=0))

        rest = np.flatnonzero(~named_mask)
        for members, centroid in _discover(embeddings[rest], cfg):
            idx = rest[members]
            theme_id = "discovered_" + stable_id(
                "theme", *sorted(claim_ids[i] for i in idx), length=10
            )
            labels[idx] = theme_id
            final_scores[idx] = embeddings[idx] @ centroid
            themes.append(ThemeInfo(theme_id, theme_id, "discovered", None, idx, centroid))
        themes.append(
            ThemeInfo(
                UNASSIGNED, "Unassigned", UNASSIGNED, None, np.flatnonzero(labels == UNASSIGNED)
            )
        )
        keywords = ctfidf_keywords(
            [" ".join(texts[i] for i in t.member_idx) for t in themes], cfg.n_keywords
        )
        for theme, kw in zip(themes, keywords, strict=True):
            theme.keywords = kw
            if theme.kind == "discovered":
                theme.label = " / ".join(kw[:3]) if kw else theme.theme_id
            if theme.centroid is not None and len(theme.member_idx):
                sims = embeddings[theme.member_idx] @ theme.centroid
                order = np.argsort(-_ranking(sims), kind="stable")[: cfg.n_representatives]
                theme.representatives = [int(theme.member_idx[o]) for o in order]
                if theme.kind == "discovered":
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
        out: list[list[tuple[str, float]]] = []
        for i, row in enumerate(self.named_scores_):
            primary = self.labels_[i]
            top = float(row.max())
            order = np.argsort(-_ranking(row), kind="stable")
            picks = [
                (self.vectors.keys[j], float(row[j]))
                for j in order
                if self.vectors.keys[j] != primary
                and row[j] >= cfg.secondary_threshold
                and row[j] >= top - cfg.secondary_margin
            ]
            out.append(picks[: cfg.max_secondary])
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
    docs = np.unique(np.asarray(doc_ids, dtype=object), return_inverse=True)[1].reshape(-1)
    para_keys = np.asarray(
        [f"{d}\x1f{p}" for d, p in zip(doc_ids, paragraphs, strict=True)], dtype=object
    )
    paras = np.unique(para_keys, return_inverse=True)[1].reshape(-1)
    doc_mean = _group_mean(raw, docs)
    para_mean = _group_mean(raw, paras)
    context = paragraph_share * para_mean + (1 - paragraph_share) * doc_mean
    mixed: np.ndarray = (1 - weight) * raw + weight * context
    return mixed.astype(np.float32)


def _group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    n_groups = int(groups.max()) + 1
    sums = np.zeros((n_groups, values.shape[1]), dtype=np.float64)
    np.add.at(sums, groups, values)
    counts = np.bincount(groups, minlength=n_groups)[:, None]
    means: np.ndarray = (sums / counts)[groups]
    return means


def _discover(embeddings: np.ndarray, cfg: ThemeConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cluster claims; return (member indices, unit centroid) per kept cluster, largest first."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import silhouette_score

    n = len(embeddings)
    # Repeated claims give identical vectors; k-means cannot find more clusters than points.
    n_distinct = len(np.unique(embeddings.round(5), axis=0)) if n else 0
    k_max = min(cfg.max_discovered, n // cfg.min_cluster_size, n_distinct)
    if k_max < 2:
        return []
    best: tuple[float, np.ndarray] | None = None
    for k in range(2, k_max + 1):
        if n > 5000:
            km: Any = MiniBatchKMeans(
                n_clusters=k, random_state=cfg.random_state, n_init=3, batch_size=2048
            )
        else:
            km = KMeans(n_clusters=k, random_state=cfg.random_state, n_init=4)
        labels = km.fit_predict(embeddings)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(
            silhouette_score(
                embeddings,
                labels,
                metric="cosine",
                sample_size=min(n, cfg.silhouette_sample),
                random_state=cfg.random_state,
            )
        )
        if best is None or score > best[0] + 1e-9:
            best = (score, labels)
    if best is None:
        return []
    labels = best[1]
    clusters = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) >= cfg.min_cluster_size:
            clusters.append((members, _unit(embeddings[members].mean(axis=0))))
    clusters.sort(key=lambda mc: (-len(mc[0]), int(mc[0][0])))
    return clusters


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
) -> dict[str, list[dict[str, Any]]]:
    """Turn a fitted model into rows for `themes`, `claim_themes` and `document_themes`."""
    themes_rows = []
    for t in model.themes_:
        named = catalog.themes.get(t.theme_id)
        themes_rows.append(
            {
                "theme_id": t.theme_id,
                "label": named.label if named else t.label,
                "kind": t.kind,
                "keywords": t.keywords,
                "n_claims": len(t.member_idx),
                "description": named.description if named else _keyword_description(t),
                "parent_id": None,
                "representative_claim_ids": [claim_ids[i] for i in t.representatives],
                "coherence": t.coherence,
            }
        )
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
    return {
        "themes": themes_rows,
        "claim_themes": claim_rows,
        "document_themes": _document_mix(doc_ids, list(model.labels_)),
    }


def _keyword_description(theme: ThemeInfo) -> str | None:
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
