"""config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    fit_sample: int = Field(50_000, ge=100)
    replay_claims: int = Field(50_000, ge=0)
    random_state: int = 0
