"""Corpus assets: raw files to documents, rejects, duplicates, segments and claims."""

from collections.abc import Iterator

import dagster as dg
import pyarrow as pa

from assets.resources import PipelineSettings
from pipeline.claims import extract_corpus
from pipeline.ingest import ingest_directory
from pipeline.schemas import SCHEMAS, TABLE_DESCRIPTIONS, to_table

CORPUS_TABLES = ("documents", "rejected_files", "duplicates", "segments", "claims")


@dg.multi_asset(
    outs={
        name: dg.AssetOut(description=TABLE_DESCRIPTIONS[name], group_name="corpus")
        for name in CORPUS_TABLES
    },
)
def corpus(
    context: dg.AssetExecutionContext, settings: PipelineSettings
) -> Iterator[dg.Output[pa.Table]]:
    """Read the raw dir; every file becomes a document, a reject or a duplicate."""
    result = ingest_directory(settings.raw_dir, settings.ingest_config())
    parts = extract_corpus(result.documents, max_chars=settings.max_sentence_chars)
    rows = {
        "documents": result.documents,
        "rejected_files": result.rejected,
        "duplicates": result.duplicates,
        "segments": parts.segments,
        "claims": parts.claims,
    }
    counts = {f"files_{k}": v for k, v in result.outcome_counts().items()}
    for name in CORPUS_TABLES:
        yield dg.Output(
            to_table(rows[name], SCHEMAS[name]),
            output_name=name,
            metadata=counts if name == "documents" else None,
        )
