"""Every claim-matching setting, typed and documented (docs/matching.md explains each)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MatchConfig(BaseModel):
    """How candidate pairs are found, checked and scored, and how clusters are formed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int = Field(
        10, ge=1, le=1000, description="Nearest claims looked at for each new claim."
    )
    candidate_floor: float = Field(
        0.45, ge=-1, le=1, description="Cosine below which two claims are not even compared."
    )
    overlap_weight: float = Field(
        0.5,
        ge=0,
        le=2,
        description="Weight of the shared content words in the match score (cosine + w * overlap).",
    )
    min_content_words: int = Field(
        4,
        ge=0,
        description=(
            "A claim with fewer content words than this is never matched: too short to state a "
            'checkable proposition on its own ("Wales has moved on.", "Ireland\'s").'
        ),
    )
    match_threshold: float = Field(
        0.7, ge=-1, le=3, description="Score from which two checked claims are the same claim."
    )
    cluster_threshold: float = Field(
        0.6,
        ge=-1,
        le=3,
        description=(
            "Two groups of matched claims form one cluster only if the claims across them score "
            "this much on average (average linkage): a chain of matches does not make a topic."
        ),
    )
    max_days_apart: int | None = Field(
        30,
        ge=0,
        description=(
            "Two claims whose articles are dated more than this many days apart are not linked "
            "directly (a cluster can still span longer, claim by claim); None: no limit. Claims "
            "of undated articles are not limited."
        ),
    )
    exact_max_claims: int = Field(
        300_000,
        ge=1,
        description=(
            "Up to this many claims the nearest ones are found exactly (blockwise dot products); "
            "beyond, with an HNSW index (usearch)."
        ),
    )
    block_mb: int = Field(
        64, ge=1, description="Memory for one block of similarities in the exact search."
    )
