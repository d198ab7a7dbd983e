"""The matching tables: `claim_matches`, `claim_clusters` and `claim_spread`."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Final

import numpy as np
import pyarrow as pa

from pipeline.matching.match import ClaimIndex, MatchResult, PreviousMatches
from pipeline.schemas import SCHEMAS, to_table

__all__ = ["cluster_table", "match_table", "previous_matches", "spread_table"]


def match_table(index: ClaimIndex, result: MatchResult) -> pa.Table:
    """One row per matching pair of claims of different documents, sorted by the two ids."""
    ids, docs = index.claim_ids, index.doc_ids
    rows = []
    for i, j, score, cosine in result.matches:
        a, b = (i, j) if ids[i] < ids[j] else (j, i)
        ca, cb = result.cluster_of.get(a), result.cluster_of.get(b)
        rows.append(
            {
                "claim_id": ids[a],
                "other_claim_id": ids[b],
                "doc_id": docs[index.doc_pos[a]],
                "other_doc_id": docs[index.doc_pos[b]],
                "score": score,
                "cosine": cosine,
                "cluster_id": ca if ca is not None and ca == cb else None,
            }
        )
    rows.sort(key=lambda r: (r["claim_id"], r["other_claim_id"]))
    return to_table(rows, SCHEMAS["claim_matches"])


def _members(result: MatchResult) -> dict[str, list[int]]:
    members: dict[str, list[int]] = defaultdict(list)
    for i, cluster in result.cluster_of.items():
        members[cluster].append(i)
    return members


_CLOSENESS_TOLERANCE: Final = 1e-5


def cluster_table(index: ClaimIndex, result: MatchResult) -> pa.Table:
    """One row per claim in a cluster, with the cluster's canonical claim, size and dates."""
    ids, texts, doc_pos = index.claim_ids, index.texts, index.doc_pos
    sources = index.source_keys()
    rows = []
    for cluster, members in sorted(_members(result).items()):
        members.sort(key=lambda i: ids[i])
        vectors = np.asarray(index.vectors[members], np.float32)
        # Ties within a tolerance are ties: in a pair both claims are equally close to the mean,
        # and float noise (another backend, another BLAS) must not pick one. The first of the
        # ties is the smallest claim id. (Rounding would not do: two values a hair apart can
        # round to different sides.)
        closeness = vectors @ vectors.mean(axis=0)
        tied = np.flatnonzero(closeness >= closeness.max() - _CLOSENESS_TOLERANCE)
        canonical = members[int(tied[0])]
        docs = sorted({int(doc_pos[i]) for i in members})
        dates = [index.doc_date[d] for d in docs]
        first = min(docs, key=lambda d: (index.doc_date[d], index.doc_ids[d]))
        shared = {
            "canonical_claim_id": ids[canonical],
            "canonical_text": texts[canonical],
            "n_claims": len(members),
            "n_documents": len({int(index.doc_family[d]) for d in docs}),
            "n_sources": len({sources[d] for d in docs}),
            "first_seen": min(dates),
            "last_seen": max(dates),
            "first_doc_id": index.doc_ids[first],
            "first_source": index.doc_outlet[first],
        }
        for i in members:
            rows.append(
                {
                    "cluster_id": cluster,
                    "claim_id": ids[i],
                    "doc_id": index.doc_ids[doc_pos[i]],
                    "is_canonical": i == canonical,
                    **shared,
                }
            )
    return to_table(rows, SCHEMAS["claim_clusters"])


def spread_table(index: ClaimIndex, result: MatchResult) -> pa.Table:
    """Per cluster and day: claims, documents and sources, new and cumulative sources."""
    sources = index.source_keys()
    rows = []
    for cluster, members in sorted(_members(result).items()):
        by_day: dict[dt.date, list[int]] = defaultdict(list)
        for i in members:
            doc = int(index.doc_pos[i])
            by_day[index.doc_date[doc]].append(doc)
        seen: set[str] = set()
        for day in sorted(by_day):
            docs = by_day[day]
            today = {sources[d] for d in docs}
            new = today - seen
            seen |= today
            rows.append(
                {
                    "cluster_id": cluster,
                    "date": day,
                    "n_claims": len(docs),
                    "n_documents": len({int(index.doc_family[d]) for d in docs}),
                    "n_sources": len(today),
                    "new_sources": len(new),
                    "cumulative_sources": len(seen),
                }
            )
    return to_table(rows, SCHEMAS["claim_spread"])


def previous_matches(claim_ids: pa.Table, clusters: pa.Table, matches: pa.Table) -> PreviousMatches:
    """Last night's state from its `claims` ids, `claim_clusters` and `claim_matches`."""
    return PreviousMatches(
        frozenset(claim_ids.column("claim_id").to_pylist()),
        dict(
            zip(
                clusters.column("claim_id").to_pylist(),
                clusters.column("cluster_id").to_pylist(),
                strict=True,
            )
        ),
        list(
            zip(
                matches.column("claim_id").to_pylist(),
                matches.column("other_claim_id").to_pylist(),
                matches.column("score").to_pylist(),
                matches.column("cosine").to_pylist(),
                strict=True,
            )
        ),
    )
