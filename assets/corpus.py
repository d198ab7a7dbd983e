"""Corpus assets: raw files to documents, rejects, duplicates, segments and claims."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from assets.checks import CORPUS_CHECKS, check_specs, corpus_results, schema_results
from assets.compute import ComputeResource
from assets.resources import PipelineSettings, RunLockResource
from pipeline.corpus import CORPUS_TABLES, PreviousCorpus, state_key, write_corpus
from pipeline.ingest import RawDirError
from pipeline.parallel import Workers
from pipeline.progress import Progress
from pipeline.schemas import TABLE_DESCRIPTIONS
from pipeline.storage import TableFile

SIGNATURES = "_cache/near_duplicate_signatures.parquet"  # "_": not a table for analysts
# Transient I/O errors (network file systems, a disk briefly full) deserve another try.
IO_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


@contextmanager
def not_retried(*errors: type[Exception]) -> Iterator[None]:
    """Fail the step at once on errors another try cannot mend (a missing raw dir or model).

    IO_RETRY is for transient errors; retrying these would only delay the failure by its
    backoff (30 s) every night.
    """
    try:
        yield
    except errors as err:
        raise dg.Failure(description=str(err), allow_retries=False) from err


@dg.multi_asset(
    outs={
        name: dg.AssetOut(description=TABLE_DESCRIPTIONS[name], group_name="corpus")
        for name in CORPUS_TABLES
    },
    check_specs=check_specs(CORPUS_TABLES, CORPUS_CHECKS),
    retry_policy=IO_RETRY,
)
def corpus(
    context: dg.AssetExecutionContext,
    settings: PipelineSettings,
    compute: ComputeResource,
    run_lock: RunLockResource,
) -> Iterator[dg.Output[TableFile] | dg.AssetCheckResult]:
    """Read the raw dir; every file becomes a document, a reject or a duplicate.

    Unchanged files and already-split documents are reused from the last published run. The
    tables are written as they are built (pipeline.corpus.write_corpus), not held in memory. In
    the cluster profile, new documents are split as tasks on the workers.
    """
    store, config = settings.store, settings.ingest_config()
    key = state_key(config, settings.max_sentence_chars)
    previous = None
    if not settings.full_refresh:
        published = {n: TableFile(store.published(n)) for n in CORPUS_TABLES}
        previous = PreviousCorpus.from_files(
            {n: f if f.path.exists() else None for n, f in published.items()}, key
        )
    files = {name: TableFile(store.scratch(name)) for name in CORPUS_TABLES}
    with not_retried(RawDirError, FileNotFoundError):
        raw_dir, mirrored = settings.local_raw_dir()
    if mirrored is not None:
        context.log.info(
            f"mirrored {settings.raw_dir}: {mirrored.downloaded} downloaded, "
            f"{mirrored.removed} removed, {mirrored.unchanged} unchanged"
        )
    with not_retried(RawDirError), compute.lost_workers_fail_the_step():
        stats = write_corpus(
            raw_dir,
            config,
            {name: f.path for name, f in files.items()},
            max_sentence_chars=settings.max_sentence_chars,
            previous=previous,
            signatures_path=store.base_dir / SIGNATURES,
            scan_progress=Progress("corpus", "files scanned", context.log.info),
            split_progress=Progress("corpus", "documents split", context.log.info),
            workers=compute.workers(),
            # The mirror is on this machine only; splitting still goes to the workers.
            read_on=None if mirrored is None else Workers(),
            rejected=mirrored.rejected if mirrored is not None else (),
            raw_location=None if mirrored is None else settings.raw_dir,
        )
    work = {
        "files_read": stats.n_read,
        "files_reused": stats.n_reused,
        "documents_split": stats.docs_split,
        "documents_reused": stats.docs_reused,
        **{f"files_{k}": v for k, v in stats.outcomes.items()},
    }
    context.log.info(f"corpus: {work}")
    # Checked before the IO manager moves the files: a failed check still fails the step.
    last = TableFile(store.published("documents"))
    checks = [
        *schema_results(files),
        *corpus_results(
            files,
            raw_dir,
            stats.problems,
            last.num_rows if last.path.exists() else None,
            settings.max_corpus_shrink,
            settings.raw_dir,
        ),
    ]
    for name in CORPUS_TABLES:
        yield dg.Output(
            files[name], output_name=name, metadata=work if name == "documents" else None
        )
    yield from checks
