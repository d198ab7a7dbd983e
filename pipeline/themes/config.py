"""Every theme setting, typed and documented: the one configuration of the theme step."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ThemeConfig(BaseModel):
    """Assignment, discovery and description settings (docs/themes.md explains each).

    The assignment defaults (``assign_threshold``, ``background_margin``) were calibrated on
    real labelled news (``benchmarks/themes_news.py`` reports them cross-validated); the others
    are structural choices that hold across corpora.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Named themes (pipeline.themes.scoring).
    assign_threshold: float = Field(
        0.2, ge=0, le=1, description="Floor on a named theme's score (context-mixed cosine)."
    )
    background_margin: float = Field(
        0.07,
        ge=-1,
        le=1,
        description="How far a named theme's score must clear the background statements'.",
    )
    seed_top_k: int = Field(3, ge=1, description="Seeds averaged for the seed part of a score.")
    secondary_threshold: float = Field(
        0.2, ge=-1, le=1, description="Floor on a secondary theme's score."
    )
    secondary_margin: float = Field(
        0.05, ge=0, le=1, description="A secondary theme is within this of the primary's score."
    )
    max_secondary: int = Field(2, ge=0)
    seed_weight: float = Field(0.6, ge=0)
    centroid_weight: float = Field(0.2, ge=0)
    description_weight: float = Field(0.2, ge=0)
    context_weight: float = Field(
        0.3, ge=0, lt=1, description="Share of a score taken from the paragraph and document."
    )
    paragraph_share: float = Field(0.7, ge=0, le=1)
    document_prior: float = Field(
        0.04,
        ge=0,
        le=1,
        description="Added to a document's dominant named theme when choosing between themes.",
    )
    document_prior_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of a document's claims a named theme needs to be its dominant one.",
    )
    nest_margin: float = Field(
        0.0,
        ge=-1,
        le=1,
        description=(
            "A discovered theme whose claims, on average, clear a named theme's background by "
            "this much becomes that theme's child."
        ),
    )
    # Discovered themes (pipeline.themes.discovery).
    min_cluster_size: int = Field(3, ge=2)
    max_discovered: int = Field(40, ge=1)
    max_claims_per_theme: int = Field(2000, ge=10)
    discovery_context_weight: float = Field(0.5, ge=0, lt=1)
    max_broad: int = Field(12, ge=2)
    match_threshold: float = Field(0.8, ge=0, le=1)
    novelty_threshold: float = Field(0.35, ge=-1, le=1)
    novel_min_documents: int = Field(3, ge=1)
    stickiness: float = Field(0.03, ge=0, le=1)
    # Descriptions (pipeline.themes.keywords).
    n_keywords: int = Field(8, ge=1)
    keyword_candidates: int = Field(
        40, ge=1, description="Top c-TF-IDF terms per theme reranked by the model (MMR)."
    )
    keyword_diversity: float = Field(
        0.5, ge=0, le=1, description="MMR trade-off: 0 = relevance only, 1 = diversity only."
    )
    keyword_sample: int = Field(1000, ge=10)
    n_representatives: int = Field(5, ge=1)
    # Cost bounds.
    silhouette_sample: int = Field(3000, ge=100)
    search_sample: int = Field(5000, ge=100)
    fit_sample: int = Field(50_000, ge=100)
    replay_claims: int = Field(
        50_000, ge=0, description="Corpora up to this many claims are read once, then replayed."
    )
    random_state: int = 0
