"""Corpus assets: raw files to documents, rejects, duplicates, segments and claims."""

from collections.abc import Iterator

import dagster as dg
import pyarrow as pa

from assets.checks import CORPUS_CHECKS, check_specs, corpus_results, schema_results
from assets.resources import PipelineSettings, RunLockResource
from pipeline.corpus import CORPUS_TABLES, PreviousCorpus, build_corpus, state_key
from pipeline.schemas import TABLE_DESCRIPTIONS

SIGNATURES = "_cache/near_duplicate_signatures.parquet"  # "_": not a table for analysts
# Transient I/O errors (network file systems, a disk briefly full) deserve another try.
IO_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


@dg.multi_asset(
    outs={
        name: dg.AssetOut(description=TABLE_DESCRIPTIONS[name], group_name="corpus")
        for name in CORPUS_TABLES
    },
    check_specs=check_specs(CORPUS_TABLES, CORPUS_CHECKS),
    retry_policy=IO_RETRY,
)
def corpus(
    context: dg.AssetExecutionContext, settings: PipelineSettings, run_lock: RunLockResource
) -> Iterator[dg.Output[pa.Table] | dg.AssetCheckResult]:
    """Read the raw dir; every file becomes a document, a reject or a duplicate.

    Unchanged files and already-split documents are reused from the last published run.
    """
    key = state_key(settings.ingest_config(), settings.max_sentence_chars)
    previous = (
        None
        if settings.full_refresh
        else PreviousCorpus.from_tables(
            {name: settings.store.previous(name) for name in CORPUS_TABLES}, key
        )
    )
    built = build_corpus(
        settings.raw_dir,
        settings.ingest_config(),
        max_sentence_chars=settings.max_sentence_chars,
        previous=previous,
        signatures_path=settings.store.base_dir / SIGNATURES,
    )
    work = {
        "files_read": built.ingest.n_read,
        "files_reused": built.ingest.n_reused,
        "documents_split": built.docs_split,
        "documents_reused": built.docs_reused,
        **{f"files_{k}": v for k, v in built.ingest.outcome_counts().items()},
    }
    context.log.info(f"corpus: {work}")
    for name in CORPUS_TABLES:
        yield dg.Output(
            built.tables[name], output_name=name, metadata=work if name == "documents" else None
        )
    yield from schema_results(built.tables)
    yield from corpus_results(built.tables, settings.raw_dir)
