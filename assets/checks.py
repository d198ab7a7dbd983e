"""Blocking asset checks, evaluated inside the step that produces the table.

Each check is declared as an ``AssetCheckSpec`` on its asset and evaluated on the table still in
memory (or, for a table the step streamed to disk, read back a batch at a time), before the step
ends. A failed check (severity ERROR) fails the step, so nothing
downstream runs and `runs` never publishes. Evaluating in the producing step, rather than in
one check step per table, spares 18 step starts and 18 re-reads of staged Parquet every night.
"""

import datetime as dt
from collections.abc import Iterator, Mapping

import dagster as dg
import pyarrow as pa

from pipeline import validate
from pipeline.corpus import LISTED_AT
from pipeline.schemas import SCHEMAS, embeddings_schema
from pipeline.storage import TableFile
from pipeline.themes import ThemeCatalog

SCHEMA = "schema_matches_contract"
NO_DOCUMENT_MISSING = "no_document_silently_missing"
CLAIMS_TRACE = "claims_trace_to_documents"
SEGMENTS_TRACE = "segments_trace_to_documents"
ONE_EMBEDDING = "one_normalised_embedding_per_claim"
ONE_PRIMARY = "one_primary_theme_per_claim"
CATALOG_PRESENT = "catalog_themes_present"
SHARES_SUM = "theme_shares_sum_to_one"
NOT_SHRUNK = "corpus_not_shrunk_by_accident"
MATCHES_ACROSS = "matches_across_documents"
ONE_CLUSTER = "one_cluster_per_claim"

_DESCRIPTIONS = {
    NO_DOCUMENT_MISSING: (
        "Raw files = documents + rejected files + duplicates, each exactly once; doc_id unique."
    ),
    NOT_SHRUNK: (
        "The raw dir yields documents if the last published run had some, and not fewer than "
        "(1 - max_corpus_shrink) of them (an unmounted share looks like an emptied folder)."
    ),
    CLAIMS_TRACE: (
        "claim_id unique; every doc_id exists; text equals documents.text[char_start:char_end]."
    ),
    SEGMENTS_TRACE: "segment_id unique; text equals documents.text[char_start:char_end].",
    ONE_EMBEDDING: "One finite, L2-normalised embedding per claim.",
    ONE_PRIMARY: "Exactly one rank-1 theme per claim; every theme_id and claim_id exists.",
    CATALOG_PRESENT: "theme_id unique; every catalog theme is present.",
    SHARES_SUM: "Shares sum to 1 per document; every doc_id exists.",
    MATCHES_ACROSS: "Each pair once, of two existing claims in different documents.",
    ONE_CLUSTER: "Each claim in at most one cluster, which has one canonical claim.",
}
_ASSET_OF = {
    NO_DOCUMENT_MISSING: "documents",
    NOT_SHRUNK: "documents",
    CLAIMS_TRACE: "claims",
    SEGMENTS_TRACE: "segments",
    ONE_EMBEDDING: "claim_embeddings",
    ONE_PRIMARY: "claim_themes",
    CATALOG_PRESENT: "themes",
    SHARES_SUM: "document_themes",
    MATCHES_ACROSS: "claim_matches",
    ONE_CLUSTER: "claim_clusters",
}


def check_specs(tables: tuple[str, ...], extra: tuple[str, ...] = ()) -> list[dg.AssetCheckSpec]:
    """Blocking specs: the schema check of each table plus the named data checks."""
    specs = [
        dg.AssetCheckSpec(
            SCHEMA, asset=name, blocking=True, description=f"{name} has the contract schema."
        )
        for name in tables
    ]
    specs += [
        dg.AssetCheckSpec(
            name, asset=_ASSET_OF[name], blocking=True, description=_DESCRIPTIONS[name]
        )
        for name in extra
    ]
    return specs


CORPUS_CHECKS = (NO_DOCUMENT_MISSING, NOT_SHRUNK, CLAIMS_TRACE, SEGMENTS_TRACE)
EMBEDDING_CHECKS = (ONE_EMBEDDING,)
THEME_CHECKS = (ONE_PRIMARY, CATALOG_PRESENT, SHARES_SUM)
MATCH_CHECKS = (MATCHES_ACROSS, ONE_CLUSTER)


def _result(asset: str, name: str, problems: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else "ok",
        metadata={"problems": len(problems)},
    )


def schema_results(
    tables: Mapping[str, pa.Table | TableFile],
) -> Iterator[dg.AssetCheckResult]:
    """Each table against its contract schema (embeddings: any dimension, fixed per model)."""
    for name, table in tables.items():
        expected = SCHEMAS.get(name) or embeddings_schema(
            table.schema.field("embedding").type.list_size
        )
        yield _result(name, SCHEMA, validate.check_schema(table, expected))


def corpus_results(
    tables: Mapping[str, TableFile],
    raw_dir: str,
    offset_problems: Mapping[str, list[str]],
    published_documents: int | None = None,
    max_shrink: float = 1.0,
    raw_location: str | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """No raw file unaccounted for; segments and claims unique and traceable to their text.

    ``raw_location`` names the raw dir in messages when ``raw_dir`` is its local mirror.
    Reads only key columns. Whether each row's text equals its document's text at its offsets
    was checked on every row as it was written (``offset_problems``, from
    :func:`pipeline.corpus.write_corpus`), when the document's text was at hand.
    """
    documents = tables["documents"].read(["doc_id", "source_path"])
    rejected = tables["rejected_files"].read(["source_path"])
    duplicates = tables["duplicates"].read(["source_path", "doc_id"])
    listed_at = (tables["documents"].schema.metadata or {}).get(LISTED_AT)
    before = dt.datetime.fromisoformat(listed_at.decode()).timestamp() if listed_at else None
    listed = [
        *documents.column("source_path").to_pylist(),
        *rejected.column("source_path").to_pylist(),
        *duplicates.column("source_path").to_pylist(),
    ]
    yield _result(
        "documents",
        NO_DOCUMENT_MISSING,
        validate.check_accounting(raw_dir, listed, before)
        + validate.check_unique(documents, "doc_id")
        + validate.check_references(duplicates, "doc_id", documents, "doc_id", "documents"),
    )
    yield _result(
        "documents",
        NOT_SHRUNK,
        validate.check_shrink(
            documents.num_rows, published_documents, max_shrink, raw_location or raw_dir
        ),
    )
    claims = tables["claims"].read(["claim_id", "doc_id"])
    yield _result(
        "claims",
        CLAIMS_TRACE,
        validate.check_unique(claims, "claim_id")
        + validate.check_references(claims, "doc_id", documents, "doc_id", "documents")
        + list(offset_problems.get("claims", [])),
    )
    segments = tables["segments"].read(["segment_id"])
    yield _result(
        "segments",
        SEGMENTS_TRACE,
        validate.check_unique(segments, "segment_id") + list(offset_problems.get("segments", [])),
    )


def embedding_results(
    claim_embeddings: TableFile, claims: TableFile
) -> Iterator[dg.AssetCheckResult]:
    """One finite, normalised embedding per claim, in claim order."""
    yield _result(
        "claim_embeddings",
        ONE_EMBEDDING,
        validate.check_embedding_file(claim_embeddings, claims),
    )


def theme_results(
    tables: Mapping[str, pa.Table | TableFile],
    claims: TableFile,
    documents: pa.Table,
    catalog: ThemeCatalog,
) -> Iterator[dg.AssetCheckResult]:
    """Assignments complete and sound, catalog themes present, document mixes sum to one.

    Only key columns are read: `claim_themes` and `claims` grow with the corpus.
    """
    claim_themes = _columns(tables["claim_themes"], ["claim_id", "theme_id", "rank"])
    themes = _columns(tables["themes"], ["theme_id"])
    claim_ids = claims.read(["claim_id"])
    yield _result(
        "claim_themes",
        ONE_PRIMARY,
        validate.check_one_primary(claim_themes, claim_ids)
        + validate.check_references(claim_themes, "theme_id", themes, "theme_id", "themes")
        + validate.check_references(claim_themes, "claim_id", claim_ids, "claim_id", "claims"),
    )
    missing = set(catalog.themes) - set(themes.column("theme_id").to_pylist())
    problems = validate.check_unique(themes, "theme_id")
    if missing:
        problems.append(f"catalog themes missing: {sorted(missing)}")
    yield _result("themes", CATALOG_PRESENT, problems)
    document_themes = _columns(tables["document_themes"], ["doc_id", "share"])
    yield _result(
        "document_themes",
        SHARES_SUM,
        validate.check_shares(document_themes)
        + validate.check_references(document_themes, "doc_id", documents, "doc_id", "documents"),
    )


def match_results(
    tables: Mapping[str, pa.Table], claims: TableFile
) -> Iterator[dg.AssetCheckResult]:
    """Matches are unique pairs across documents; clusters partition their claims."""
    claim_ids = claims.read(["claim_id"])
    matches = tables["claim_matches"]
    yield _result(
        "claim_matches",
        MATCHES_ACROSS,
        validate.check_pairs(matches)
        + validate.check_references(matches, "claim_id", claim_ids, "claim_id", "claims")
        + validate.check_references(matches, "other_claim_id", claim_ids, "claim_id", "claims"),
    )
    clusters = tables["claim_clusters"]
    yield _result(
        "claim_clusters",
        ONE_CLUSTER,
        validate.check_unique(clusters, "claim_id")
        + validate.check_canonical(clusters)
        + validate.check_references(clusters, "claim_id", claim_ids, "claim_id", "claims"),
    )


def _columns(table: pa.Table | TableFile, columns: list[str]) -> pa.Table:
    return table.read(columns) if isinstance(table, TableFile) else table.select(columns)
