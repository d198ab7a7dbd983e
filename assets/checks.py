"""Blocking asset checks: a failed check stops the run before `runs` publishes anything."""

import datetime as dt

import dagster as dg
import pyarrow as pa

from assets.resources import PipelineSettings
from pipeline import validate
from pipeline.corpus import LISTED_AT
from pipeline.schemas import SCHEMAS, embeddings_schema


def _result(problems: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else "ok",
        metadata={"problems": len(problems)},
    )


def _schema_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=name,
        name="schema_matches_contract",
        blocking=True,
        description=f"{name} has the contract schema.",
    )
    def _check(table: pa.Table) -> dg.AssetCheckResult:
        expected = SCHEMAS.get(name) or embeddings_schema(
            table.schema.field("embedding").type.list_size
        )
        return _result(validate.check_schema(table, expected))

    return _check


SCHEMA_CHECKS = [_schema_check(name) for name in [*SCHEMAS, "claim_embeddings"]]


@dg.asset_check(
    asset="documents",
    blocking=True,
    additional_ins={
        "rejected_files": dg.AssetIn("rejected_files"),
        "duplicates": dg.AssetIn("duplicates"),
    },
    description=(
        "Raw files = documents + rejected files + duplicates, each exactly once; doc_id unique."
    ),
)
def no_document_silently_missing(
    documents: pa.Table, rejected_files: pa.Table, duplicates: pa.Table, settings: PipelineSettings
) -> dg.AssetCheckResult:
    """Every raw file listed by the run is accounted for."""
    listed_at = (documents.schema.metadata or {}).get(LISTED_AT)
    before = dt.datetime.fromisoformat(listed_at.decode()).timestamp() if listed_at else None
    listed = [
        *documents.column("source_path").to_pylist(),
        *rejected_files.column("source_path").to_pylist(),
        *duplicates.column("source_path").to_pylist(),
    ]
    problems = validate.check_accounting(settings.raw_dir, listed, before)
    problems += validate.check_unique(documents, "doc_id")
    problems += validate.check_references(duplicates, "doc_id", documents, "doc_id", "documents")
    return _result(problems)


@dg.asset_check(
    asset="claims",
    blocking=True,
    additional_ins={"documents": dg.AssetIn("documents")},
    description=(
        "claim_id unique; every doc_id exists; text equals documents.text[char_start:char_end]."
    ),
)
def claims_trace_to_documents(claims: pa.Table, documents: pa.Table) -> dg.AssetCheckResult:
    """Claims are unique and traceable to their document's text."""
    return _result(
        validate.check_unique(claims, "claim_id")
        + validate.check_references(claims, "doc_id", documents, "doc_id", "documents")
        + validate.check_offsets(documents, claims, "claims")
    )


@dg.asset_check(
    asset="segments",
    blocking=True,
    additional_ins={"documents": dg.AssetIn("documents")},
    description="segment_id unique; text equals documents.text[char_start:char_end].",
)
def segments_trace_to_documents(segments: pa.Table, documents: pa.Table) -> dg.AssetCheckResult:
    """Segments are unique and traceable to their document's text."""
    return _result(
        validate.check_unique(segments, "segment_id")
        + validate.check_offsets(documents, segments, "segments")
    )


@dg.asset_check(
    asset="claim_embeddings",
    blocking=True,
    additional_ins={"claims": dg.AssetIn("claims")},
    description="One finite, L2-normalised embedding per claim.",
)
def one_normalised_embedding_per_claim(
    claim_embeddings: pa.Table, claims: pa.Table
) -> dg.AssetCheckResult:
    """Embeddings are complete and normalised."""
    return _result(validate.check_embeddings(claim_embeddings, claims))


@dg.asset_check(
    asset="claim_themes",
    blocking=True,
    additional_ins={"claims": dg.AssetIn("claims"), "themes": dg.AssetIn("themes")},
    description="Exactly one rank-1 theme per claim; every theme_id and claim_id exists.",
)
def one_primary_theme_per_claim(
    claim_themes: pa.Table, claims: pa.Table, themes: pa.Table
) -> dg.AssetCheckResult:
    """Theme assignments are complete and referentially sound."""
    return _result(
        validate.check_one_primary(claim_themes, claims)
        + validate.check_references(claim_themes, "theme_id", themes, "theme_id", "themes")
        + validate.check_references(claim_themes, "claim_id", claims, "claim_id", "claims")
    )


@dg.asset_check(
    asset="themes", blocking=True, description="theme_id unique; every catalog theme is present."
)
def catalog_themes_present(themes: pa.Table, settings: PipelineSettings) -> dg.AssetCheckResult:
    """Named themes keep their catalog keys."""
    missing = set(settings.catalog().themes) - set(themes.column("theme_id").to_pylist())
    problems = validate.check_unique(themes, "theme_id")
    if missing:
        problems.append(f"catalog themes missing: {sorted(missing)}")
    return _result(problems)


@dg.asset_check(
    asset="document_themes",
    blocking=True,
    additional_ins={"documents": dg.AssetIn("documents")},
    description="Shares sum to 1 per document; every doc_id exists.",
)
def theme_shares_sum_to_one(document_themes: pa.Table, documents: pa.Table) -> dg.AssetCheckResult:
    """Each document's theme mix is a distribution."""
    return _result(
        validate.check_shares(document_themes)
        + validate.check_references(document_themes, "doc_id", documents, "doc_id", "documents")
    )


ALL_CHECKS = [
    *SCHEMA_CHECKS,
    no_document_silently_missing,
    claims_trace_to_documents,
    segments_trace_to_documents,
    one_normalised_embedding_per_claim,
    one_primary_theme_per_claim,
    catalog_themes_present,
    theme_shares_sum_to_one,
]
