"""Claim matching: the same checkable claim across articles and outlets (docs/matching.md).

`candidates` finds each new claim's nearest claims, `verify` refuses pairs that contradict
(quantities, dates, negation), `clusters` joins the matches into clusters with lasting ids,
`match` ties them together and `tables` writes the analyst tables.
"""

from pipeline.matching.config import MatchConfig
from pipeline.matching.match import (
    ClaimIndex,
    MatchResult,
    PreviousMatches,
    match_claims,
    match_key,
    read_claim_index,
)
from pipeline.matching.tables import cluster_table, match_table, previous_matches, spread_table

__all__ = [
    "ClaimIndex",
    "MatchConfig",
    "MatchResult",
    "PreviousMatches",
    "cluster_table",
    "match_claims",
    "match_key",
    "match_table",
    "previous_matches",
    "read_claim_index",
    "spread_table",
]
