"""Embedding asset: one L2-normalised vector per claim, computed once per distinct text."""

import functools
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from assets.checks import EMBEDDING_CHECKS, check_specs, embedding_results, schema_results
from assets.compute import ComputeResource
from assets.corpus import IO_RETRY, not_retried
from assets.resources import EmbedderResource, PipelineSettings, RunLockResource
from pipeline.embed import EmbeddingCache, ModelError, embed_claims
from pipeline.embed.workers import encode_texts
from pipeline.progress import Progress
from pipeline.storage import TableFile

CACHE_DIR = "_cache/embeddings"  # under the output dir; "_" hides it from dataset readers


@dg.asset(
    group_name="embeddings",
    description="One L2-normalised embedding per claim (claim_id, embedding, model).",
    check_specs=check_specs(("claim_embeddings",), EMBEDDING_CHECKS),
    retry_policy=IO_RETRY,
)
def claim_embeddings(
    context: dg.AssetExecutionContext,
    claims: TableFile,
    embedder: EmbedderResource,
    settings: PipelineSettings,
    compute: ComputeResource,
    run_lock: RunLockResource,
) -> Iterator[dg.Output[TableFile] | dg.AssetCheckResult]:
    """Embed the claims, taking every text already embedded by this model from the cache.

    Streams: claims are read and vectors written a batch at a time (pipeline.embed.embed_claims).
    In the cluster profile, each chunk of new texts is a task on a worker, which opens the
    encoder the driver resolved once and keeps it.
    """
    with not_retried(ModelError):
        cache = EmbeddingCache(settings.store.base_dir / CACHE_DIR, embedder.cache_key)
    if settings.full_refresh:
        cache.clear()
    out = TableFile(settings.store.scratch("claim_embeddings"))
    start = time.perf_counter()
    progress = Progress("embedding", "texts embedded", context.log.info)
    load_excluded = [False]

    def report(embedded: int, waiting: int) -> None:
        if not load_excluded[0] and embedder.load_seconds:
            progress.exclude(embedder.load_seconds)  # the rate is the model's, after its load
            load_excluded[0] = True
        progress(embedded, embedded + waiting)

    workers = compute.workers()
    embed = (
        functools.partial(encode_texts, embedder.recipe(compute.worker_threads))
        if workers.remote
        else embedder.embed
    )
    with compute.lost_workers_fail_the_step():
        result = embed_claims(
            claims,
            embed,
            cache,
            out.path,
            embedder.model_name,
            chunk_size=settings.embed_chunk_size,
            dimension=lambda: embedder.dimension,
            progress=report,
            workers=workers,
        )
    progress.finish()
    encode_s = time.perf_counter() - start - embedder.load_seconds
    metadata: dict[str, Any] = {
        "model": embedder.model_name,
        "profile": compute.profile,
        "cache_hits": result.hits,
        "cache_misses": result.misses,
        "model_load_seconds": round(embedder.load_seconds, 2),
        "embed_seconds": round(encode_s, 2),
        "texts_per_second": round(result.misses / encode_s, 1) if result.misses else 0.0,
    }
    context.log.info(f"embeddings: {result.misses} texts embedded, {result.hits} from the cache")
    # Checked before the IO manager moves the file: a failed check still fails the step.
    checks = [*schema_results({"claim_embeddings": out}), *embedding_results(out, claims)]
    yield dg.Output(out, metadata=metadata)
    yield from checks
