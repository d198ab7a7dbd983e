"""Embedding asset: one L2-normalised vector per claim, computed once per distinct text."""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa

from assets.checks import EMBEDDING_CHECKS, check_specs, embedding_results, schema_results
from assets.corpus import IO_RETRY
from assets.resources import EmbedderResource, PipelineSettings
from pipeline.embed import EmbeddingCache, embed_with_cache, embeddings_table

CACHE_DIR = "_cache/embeddings"  # under the output dir; "_" hides it from dataset readers


@dg.asset(
    group_name="embeddings",
    description="One L2-normalised embedding per claim (claim_id, embedding, model).",
    check_specs=check_specs(("claim_embeddings",), EMBEDDING_CHECKS),
    retry_policy=IO_RETRY,
)
def claim_embeddings(
    context: dg.AssetExecutionContext,
    claims: pa.Table,
    embedder: EmbedderResource,
    settings: PipelineSettings,
) -> Iterator[dg.Output[pa.Table] | dg.AssetCheckResult]:
    """Embed the claims, taking every text already embedded by this model from the cache."""
    cache = EmbeddingCache(settings.store.base_dir / CACHE_DIR, embedder.cache_key)
    if settings.full_refresh:
        cache.compact(keep=set())
    start = time.perf_counter()
    result = embed_with_cache(
        claims.column("text").to_pylist(), embedder.embed, cache, settings.embed_chunk_size
    )
    encode_s = time.perf_counter() - start - embedder.load_seconds
    metadata: dict[str, Any] = {
        "model": embedder.model_name,
        "cache_hits": result.hits,
        "cache_misses": result.misses,
        "model_load_seconds": round(embedder.load_seconds, 2),
        "embed_seconds": round(encode_s, 2),
        "texts_per_second": round(result.misses / encode_s, 1) if result.misses else 0.0,
    }
    context.log.info(f"embeddings: {result.misses} texts embedded, {result.hits} from the cache")
    vectors = result.vectors if claims.num_rows else np.zeros((0, embedder.dimension), np.float32)
    table = embeddings_table(claims.column("claim_id"), vectors, embedder.model_name)
    yield dg.Output(table, metadata=metadata)
    yield from schema_results({"claim_embeddings": table})
    yield from embedding_results(table, claims)
