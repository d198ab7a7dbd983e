"""Claim-matching assets: the same claim across articles, its clusters and how it spread."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from assets.checks import MATCH_CHECKS, check_specs, match_results, schema_results
from assets.resources import EmbedderResource, PipelineSettings, RunLockResource
from pipeline.matching import (
    PreviousMatches,
    cluster_table,
    match_claims,
    match_key,
    match_table,
    previous_matches,
    read_claim_index,
    spread_table,
)
from pipeline.progress import Progress
from pipeline.schemas import SCHEMAS, TABLE_DESCRIPTIONS
from pipeline.storage import TableFile

MATCH_TABLES = ("claim_matches", "claim_clusters", "claim_spread")
MATCH_KEY = b"docthemes.match_key"


@dg.multi_asset(
    outs={
        name: dg.AssetOut(description=TABLE_DESCRIPTIONS[name], group_name="matching")
        for name in MATCH_TABLES
    },
    check_specs=check_specs(MATCH_TABLES, MATCH_CHECKS),
)
def claim_matching(
    context: dg.AssetExecutionContext,
    documents: TableFile,
    claims: TableFile,
    claim_embeddings: TableFile,
    settings: PipelineSettings,
    embedder: EmbedderResource,
    run_lock: RunLockResource,
) -> Iterator[dg.Output[pa.Table] | dg.AssetCheckResult]:
    """Match tonight's new claims against every claim; last night's clusters keep their ids.

    A change of matching settings or model (the match key) rebuilds every match and cluster.
    """
    config = settings.match_config()
    key = match_key(config, embedder.cache_key)
    previous = None if settings.full_refresh else _previous(settings, key)
    progress = Progress("matching", "claims matched", context.log.info)
    scratch = Path(tempfile.mkdtemp(prefix="matching-", dir=settings.store.base_dir / "_cache"))
    try:
        index = read_claim_index(documents, claims, claim_embeddings, scratch)
        new = len(index.claim_ids) - (len(previous.seen & set(index.claim_ids)) if previous else 0)
        progress(0, new)  # matching reports no counts of its own: start and end
        result = match_claims(index, config, previous)
        progress.finish(new)
        clusters = cluster_table(index, result)
        tables = {
            "claim_matches": match_table(index, result),
            "claim_clusters": clusters.replace_schema_metadata(
                {**(clusters.schema.metadata or {}), MATCH_KEY: key.encode()}
            ),
            "claim_spread": spread_table(index, result),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stats: dict[str, Any] = {**result.stats, "rebuilt": previous is None}
    context.log.info(f"matching: {stats}")
    checks = [*schema_results(tables), *match_results(tables, claims)]
    for name, table in tables.items():
        yield dg.Output(
            table, output_name=name, metadata=stats if name == "claim_clusters" else None
        )
    yield from checks


def _previous(settings: PipelineSettings, key: str) -> PreviousMatches | None:
    """Last night's matching state, if it was made with these settings and this model."""
    store = settings.store
    paths = {n: store.published(n) for n in (*MATCH_TABLES, "claims")}
    if not all(p.exists() for p in paths.values()):
        return None
    clusters = TableFile(paths["claim_clusters"])
    if (clusters.schema.metadata or {}).get(MATCH_KEY) != key.encode():
        return None
    if not clusters.schema.equals(SCHEMAS["claim_clusters"], check_metadata=False):
        return None
    return previous_matches(
        TableFile(paths["claims"]).read(["claim_id"]),
        clusters.read(["claim_id", "cluster_id"]),
        TableFile(paths["claim_matches"]).read(["claim_id", "other_claim_id", "score", "cosine"]),
    )
