"""Claim matching: new claims against every claim, checked, scored and clustered.

Data flow: :func:`read_claim_index` gathers what matching needs from the published or staged
tables (ids, texts, document facts and the embeddings in a memory map), :func:`match_claims`
finds candidate pairs (`candidates`), refuses those that contradict (`verify`), scores the rest
and joins the matches into clusters (`clusters`), and `tables` turns the result into the
`claim_matches`, `claim_clusters` and `claim_spread` tables.

Nightly, only claims that were not in last night's `claims` table are matched (against every
claim); last night's clusters keep their ids and members, and last night's matches are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.manifest import PIPELINE_VERSION, config_hash
from pipeline.matching.candidates import UNDATED, find_candidates
from pipeline.matching.clusters import cluster_claims
from pipeline.matching.config import MatchConfig
from pipeline.matching.verify import (
    CHECKS_VERSION,
    Facts,
    conflict,
    content_words,
    extract_facts,
    word_overlap,
)
from pipeline.storage import TableFile
from pipeline.themes.source import file_claims

__all__ = [
    "UNDATED",
    "ClaimIndex",
    "MatchResult",
    "PreviousMatches",
    "match_claims",
    "match_key",
    "read_claim_index",
]

_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class ClaimIndex:
    """Every claim with what matching needs, in `claims` table order.

    Documents are indexed by position; a claim's document is ``doc_pos[i]``.
    """

    claim_ids: list[str]
    texts: list[str]
    doc_pos: np.ndarray  # (n_claims,) int
    vectors: np.ndarray  # (n_claims, dim) float32, L2-normalised; may be a memory map
    doc_ids: list[str]
    doc_family: np.ndarray  # (n_docs,) position of the document's original (near duplicates)
    doc_day: np.ndarray  # (n_docs,) int32 days since 1970 of the stated date, or UNDATED
    doc_date: list[dt.date]  # stated date, else the file's date (what the tables report)
    doc_outlet: list[str | None]

    def source_keys(self) -> list[str]:
        """Per document, what counts as one source: its family's outlet, else the family."""
        return [
            self.doc_outlet[f] or f"document:{self.doc_ids[f]}" for f in self.doc_family.tolist()
        ]


@dataclass(frozen=True, slots=True)
class PreviousMatches:
    """Last night's matching state, read from its published tables."""

    seen: frozenset[str]  # claim ids of last night's `claims`
    clusters: dict[str, str]  # claim_id -> cluster_id
    matches: list[tuple[str, str, float, float]]  # claim_id, other_claim_id, score, cosine


@dataclass(slots=True)
class MatchResult:
    """Matches (positions, ``i < j``), clusters per position and counts for the run's metadata."""

    matches: list[tuple[int, int, float, float]]  # i, j, score, cosine
    cluster_of: dict[int, str]
    stats: dict[str, Any] = field(default_factory=dict)


def match_key(config: MatchConfig, embedding_key: str) -> str:
    """Everything that decides the matches besides the claims: a change means a full rebuild."""
    return config_hash(
        {
            "pipeline": PIPELINE_VERSION,
            "checks": CHECKS_VERSION,
            "matching": config.model_dump(),
            "model": embedding_key,
        }
    )


def read_claim_index(
    documents: TableFile, claims: TableFile, embeddings: TableFile, scratch: Path
) -> ClaimIndex:
    """Gather the claims, their documents' facts and their embeddings.

    The embeddings are copied into a memory map under ``scratch`` (the caller's to delete), so
    the matrix costs page cache, not heap; ids and texts are held in memory.
    """
    docs = documents.read(
        ["doc_id", "published_date", "mtime", "source", "near_duplicate_of"]
    ).to_pylist()
    position = {d["doc_id"]: i for i, d in enumerate(docs)}
    family = np.array(
        [position.get(d["near_duplicate_of"] or d["doc_id"], i) for i, d in enumerate(docs)],
        np.int64,
    )
    day = np.array(
        [(d["published_date"] - _EPOCH).days if d["published_date"] else UNDATED for d in docs],
        np.int32,
    )
    dim = embeddings.schema.field("embedding").type.list_size
    scratch.mkdir(parents=True, exist_ok=True)
    vectors = np.lib.format.open_memmap(
        scratch / "vectors.npy", mode="w+", dtype=np.float32, shape=(claims.num_rows, dim)
    )
    claim_ids: list[str] = []
    texts: list[str] = []
    doc_pos: list[int] = []
    for chunk in file_claims(claims, embeddings)():
        vectors[chunk.start : chunk.start + len(chunk)] = chunk.embeddings
        claim_ids += chunk.claim_ids
        texts += chunk.texts
        doc_pos += [position[d] for d in chunk.doc_ids]
    vectors.flush()
    return ClaimIndex(
        claim_ids,
        texts,
        np.array(doc_pos, np.int64),
        vectors,
        [d["doc_id"] for d in docs],
        family,
        day,
        [d["published_date"] or d["mtime"].date() for d in docs],
        [d["source"] for d in docs],
    )


def match_claims(
    index: ClaimIndex, config: MatchConfig, previous: PreviousMatches | None = None
) -> MatchResult:
    """Match the new claims against every claim and cluster the matches.

    Args:
        index: Every claim (see :func:`read_claim_index`).
        config: Matching settings.
        previous: Last night's state; None matches every claim (a first run or a rebuild).

    Returns:
        Every match (last night's whose claims remain, and tonight's) and the clusters.
    """
    ids = index.claim_ids
    position = {c: i for i, c in enumerate(ids)}
    seen = previous.seen if previous else frozenset()
    new = np.array([i for i, c in enumerate(ids) if c not in seen], np.int64)
    candidates = find_candidates(
        index.vectors,
        new,
        index.doc_family[index.doc_pos],
        index.doc_day[index.doc_pos],
        top_k=config.top_k,
        floor=config.candidate_floor,
        max_days_apart=config.max_days_apart,
        exact_max=config.exact_max_claims,
        block_bytes=config.block_mb << 20,
    )
    facts: dict[int, tuple[Facts, frozenset[str]]] = {}

    def facts_of(i: int) -> tuple[Facts, frozenset[str]]:
        if i not in facts:
            facts[i] = (extract_facts(index.texts[i]), content_words(index.texts[i]))
        return facts[i]

    def score(i: int, j: int, cosine: float) -> float:
        return cosine + config.overlap_weight * word_overlap(facts_of(i)[1], facts_of(j)[1])

    def linkable(a: Sequence[int], b: Sequence[int]) -> bool:
        """The claims across two groups match on average, and none contradicts another."""
        cosines = np.asarray(index.vectors[list(a)]) @ np.asarray(index.vectors[list(b)]).T
        total = 0.0
        for x, i in enumerate(a):
            for y, j in enumerate(b):
                if conflict(facts_of(i)[0], facts_of(j)[0]) is not None:
                    return False
                total += score(i, j, float(cosines[x, y]))
        return total / (len(a) * len(b)) >= config.cluster_threshold

    matches: list[tuple[int, int, float, float]] = []
    refused: dict[str, int] = {}
    for i, j, cosine in zip(
        candidates.left.tolist(), candidates.right.tolist(), candidates.cosine.tolist(), strict=True
    ):
        short = min(len(facts_of(i)[1]), len(facts_of(j)[1])) < config.min_content_words
        reason = "short" if short else conflict(facts_of(i)[0], facts_of(j)[0])
        if reason is not None:
            refused[reason] = refused.get(reason, 0) + 1
            continue
        pair_score = score(i, j, cosine)
        if pair_score >= config.match_threshold:
            matches.append((i, j, round(pair_score, 6), round(cosine, 6)))
    tonight = len(matches)
    kept: dict[int, str] = {}
    if previous is not None:
        for a, b, kept_score, cosine in previous.matches:
            if a in position and b in position:
                i, j = sorted((position[a], position[b]))
                matches.append((i, j, kept_score, cosine))
        kept = {position[c]: k for c, k in previous.clusters.items() if c in position}
    cluster_of = cluster_claims(ids, [(s, i, j) for i, j, s, _ in matches], linkable, kept)
    stats = {
        "new_claims": len(new),
        "candidate_pairs": len(candidates),
        "new_matches": tonight,
        "kept_matches": len(matches) - tonight,
        **{f"refused_{k}": v for k, v in sorted(refused.items())},
        "clusters": len(set(cluster_of.values())),
        "claims_in_clusters": len(cluster_of),
    }
    matches.sort()
    return MatchResult(matches, cluster_of, stats)
