"""The published tables' pyarrow schemas: the data contract with analysts.

Names and types here are a contract (docs/tables.md): add columns freely, rename none. Every table
is written with its schema from this module, so an empty table still has typed columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

__all__ = [
    "EMBEDDING_DIM_KEY",
    "RUNS",
    "SCHEMAS",
    "TABLE_DESCRIPTIONS",
    "embeddings_schema",
    "to_table",
]

EMBEDDING_DIM_KEY: Final = b"docthemes.embedding_dim"


def _schema(fields: list[pa.Field], description: str) -> pa.Schema:
    return pa.schema(fields, metadata={b"docthemes.description": description.encode()})


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={b"description": doc.encode()})


_TS = pa.timestamp("us", tz="UTC")

DOCUMENTS = _schema(
    [
        _f("doc_id", pa.string(), "Stable id: hash of the normalised text."),
        _f("source_path", pa.string(), "Path relative to the raw dir, '/'-separated."),
        _f("text", pa.string(), "Decoded, normalised text; claim offsets index it."),
        _f(
            "title",
            pa.string(),
            "Title from the article's metadata, else its first line when that is a headline.",
            nullable=True,
        ),
        _f("n_claims", pa.int32(), "Number of rows in `claims` for this document."),
        _f("encoding", pa.string(), "Encoding the bytes were decoded with."),
        _f("headings", pa.list_(pa.string()), "Heading lines, in order."),
        _f("source_attribution", pa.string(), "Source / byline lines.", nullable=True),
        _f(
            "published_date",
            pa.date32(),
            "Publication date from the article's metadata, else the date stated in the text.",
            nullable=True,
        ),
        _f("n_chars", pa.int32(), "Length of `text` in characters."),
        _f("content_sha256", pa.string(), "SHA-256 of the raw file bytes."),
        _f(
            "ingested_from",
            pa.string(),
            "Absolute path the file was read from (its s3:// URL for a raw dir on S3).",
        ),
        _f("mtime", _TS, "File modification time."),
        _f("size_bytes", pa.int64(), "File size in bytes."),
        _f("near_duplicate_of", pa.string(), "doc_id this one nearly copies.", nullable=True),
        _f("near_duplicate_jaccard", pa.float32(), "Shingle Jaccard to it.", nullable=True),
        _f("source", pa.string(), "Outlet, from the article's metadata.", nullable=True),
        _f("url", pa.string(), "Address of the article, from its metadata.", nullable=True),
        _f("authors", pa.list_(pa.string()), "Authors, from the article's metadata."),
        _f(
            "metadata_from",
            pa.string(),
            "Where the metadata came from: the sidecar's path, or `metadata.csv` / "
            "`metadata.parquet`; null when only the text was read.",
            nullable=True,
        ),
        _f(
            "metadata_sha256",
            pa.string(),
            "Hash of the metadata applied (a changed sidecar re-reads the article).",
            nullable=True,
        ),
    ],
    "One row per distinct article.",
)

REJECTED_FILES = _schema(
    [
        _f("source_path", pa.string(), "Path relative to the raw dir."),
        _f("reason", pa.string(), "Short code, see docs/tables.md."),
        _f("detail", pa.string(), "Human-readable explanation."),
        _f("size_bytes", pa.int64(), "File size when known.", nullable=True),
        _f("mtime", _TS, "File modification time when known.", nullable=True),
    ],
    "Files under the raw dir that did not become documents, with the reason.",
)

DUPLICATES = _schema(
    [
        _f("source_path", pa.string(), "The duplicate file, relative to the raw dir."),
        _f("doc_id", pa.string(), "The document it duplicates."),
        _f("duplicate_of", pa.string(), "source_path of the kept file."),
        _f("kind", pa.string(), "identical_bytes or identical_text."),
        _f("size_bytes", pa.int64(), "File size in bytes."),
        _f("mtime", _TS, "File modification time."),
    ],
    "Files whose content is already a document; not processed twice.",
)

SEGMENTS = _schema(
    [
        _f("segment_id", pa.string(), "Stable id of the sentence / heading / line."),
        _f("doc_id", pa.string(), "Document."),
        _f("kind", pa.string(), "statement, question, heading or attribution."),
        _f("paragraph", pa.int32(), "Zero-based paragraph (line) number."),
        _f("position", pa.int32(), "Zero-based order within the document."),
        _f("text", pa.string(), "Exact text: documents.text[char_start:char_end]."),
        _f("char_start", pa.int32(), "Start offset into documents.text."),
        _f("char_end", pa.int32(), "End offset (exclusive)."),
    ],
    "Every sentence, heading and attribution line: nothing of the text is lost.",
)

CLAIMS = _schema(
    [
        _f("claim_id", pa.string(), "Stable id: hash of doc_id, offsets and text."),
        _f("doc_id", pa.string(), "Document."),
        _f("text", pa.string(), "Exact text: documents.text[char_start:char_end]."),
        _f("char_start", pa.int32(), "Start offset into documents.text."),
        _f("char_end", pa.int32(), "End offset (exclusive)."),
        _f("sentence_id", pa.string(), "segment_id of the sentence it comes from."),
        _f("position", pa.int32(), "Zero-based order within the document."),
        _f("paragraph", pa.int32(), "Zero-based paragraph (line) number."),
        _f("is_hedged", pa.bool_(), "Contains hedging (may, might, likely...)."),
        _f("is_quote", pa.bool_(), "Inside or made of a direct quotation."),
        _f("attributed_to", pa.string(), "Who the claim is attributed to.", nullable=True),
        _f("entities", pa.list_(pa.string()), "Normalised countries / organisations."),
    ],
    "Checkable statements, the unit of analysis.",
)


def embeddings_schema(dim: int) -> pa.Schema:
    """Schema of `claim_embeddings` for a model of ``dim`` dimensions."""
    return pa.schema(
        [
            _f("claim_id", pa.string(), "Claim."),
            _f("embedding", pa.list_(pa.float32(), dim), "L2-normalised embedding."),
            _f("model", pa.string(), "Embedding model name."),
        ],
        metadata={
            b"docthemes.description": b"One embedding per claim.",
            EMBEDDING_DIM_KEY: str(dim).encode(),
        },
    )


THEMES = _schema(
    [
        _f("theme_id", pa.string(), "Catalog key, discovered_*/broad_* id, or 'unassigned'."),
        _f("label", pa.string(), "Readable name."),
        _f("kind", pa.string(), "named, discovered, broad or unassigned."),
        _f("keywords", pa.list_(pa.string()), "c-TF-IDF keywords, best first."),
        _f("n_claims", pa.int32(), "Claims with this theme as primary."),
        _f("description", pa.string(), "Catalog description or keyword summary.", True),
        _f("parent_id", pa.string(), "Broad theme this one rolls up into.", True),
        _f("representative_claim_ids", pa.list_(pa.string()), "Most central claims."),
        _f("coherence", pa.float32(), "Mean cosine of members to centroid.", True),
        _f("status", pa.string(), "active, or retired (did not come back; id never reused)."),
        _f("first_seen", pa.date32(), "Earliest date of its documents.", True),
        _f("last_seen", pa.date32(), "Latest date of its documents.", True),
        _f("centroid", pa.list_(pa.float32()), "Centroid used to keep ids stable.", True),
    ],
    "Named, discovered and broad themes (retired ones kept, marked).",
)

THEME_TRENDS = _schema(
    [
        _f("theme_id", pa.string(), "Theme (broad themes aggregate their children)."),
        _f("date", pa.date32(), "Document date: published_date, else the file's date."),
        _f("n_claims", pa.int32(), "Claims with this primary theme that day."),
        _f("n_documents", pa.int32(), "Documents contributing those claims."),
        _f("share", pa.float32(), "n_claims / all claims that day."),
    ],
    "Theme volume per day.",
)

CLAIM_THEMES = _schema(
    [
        _f("claim_id", pa.string(), "Claim."),
        _f("theme_id", pa.string(), "Theme."),
        _f("score", pa.float32(), "Similarity score of the claim to the theme."),
        _f("rank", pa.int16(), "1 = primary; 2, 3... secondary themes above threshold."),
        _f(
            "margin",
            pa.float32(),
            "Primary rows: score minus the runner-up's (the next named theme or the background "
            "for named themes, the next centroid for discovered ones); null otherwise.",
            nullable=True,
        ),
        _f(
            "evidence",
            pa.string(),
            "Why: the theme's seed phrase or analyst example nearest the claim; for discovered "
            "themes their most representative claim; null for unassigned.",
            nullable=True,
        ),
        _f(
            "evidence_kind",
            pa.string(),
            "seed, label, feedback (an analyst's example), analyst_label (this claim was "
            "labelled), representative; null for unassigned.",
            nullable=True,
        ),
    ],
    "Claim-to-theme assignments; exactly one rank-1 row per claim.",
)

DOCUMENT_THEMES = _schema(
    [
        _f("doc_id", pa.string(), "Document."),
        _f("theme_id", pa.string(), "Theme."),
        _f("share", pa.float32(), "Fraction of the document's claims with this primary theme."),
        _f("n_claims", pa.int32(), "Number of those claims."),
    ],
    "Each document's theme mix; shares sum to 1 per document.",
)

CLAIM_MATCHES = _schema(
    [
        _f("claim_id", pa.string(), "Claim (the smaller id of the pair)."),
        _f("other_claim_id", pa.string(), "The claim it matches, in another document."),
        _f("doc_id", pa.string(), "Document of `claim_id`."),
        _f("other_doc_id", pa.string(), "Document of `other_claim_id`."),
        _f("score", pa.float32(), "Match score: cosine + overlap_weight x shared content words."),
        _f("cosine", pa.float32(), "Cosine of the two claims' embeddings."),
        _f(
            "cluster_id",
            pa.string(),
            "Their cluster; null when the pair was not joined (a contradiction with another "
            "member, or two clusters already published).",
            nullable=True,
        ),
    ],
    "Pairs of claims in different documents that state the same checkable claim.",
)

CLAIM_CLUSTERS = _schema(
    [
        _f("cluster_id", pa.string(), "Stable id of the claim cluster (kept across nights)."),
        _f("claim_id", pa.string(), "A claim of the cluster."),
        _f("doc_id", pa.string(), "Its document."),
        _f("is_canonical", pa.bool_(), "Whether this claim is the cluster's canonical one."),
        _f("canonical_claim_id", pa.string(), "The member closest to the cluster's centroid."),
        _f("canonical_text", pa.string(), "Its text."),
        _f("n_claims", pa.int32(), "Claims in the cluster."),
        _f("n_documents", pa.int32(), "Documents (a near duplicate counts with its original)."),
        _f(
            "n_sources",
            pa.int32(),
            "Outlets (`documents.source`); an article without one, or a near duplicate, counts "
            "as its original's source.",
        ),
        _f("first_seen", pa.date32(), "Earliest date of its documents."),
        _f("last_seen", pa.date32(), "Latest date of its documents."),
        _f("first_doc_id", pa.string(), "The earliest document (ties: smallest doc_id)."),
        _f("first_source", pa.string(), "That document's outlet.", nullable=True),
    ],
    "Claims that state the same claim, one row per claim; clusters of two or more claims.",
)

CLAIM_SPREAD = _schema(
    [
        _f("cluster_id", pa.string(), "Claim cluster."),
        _f("date", pa.date32(), "Document date: published_date, else the file's date."),
        _f("n_claims", pa.int32(), "Claims of the cluster that day."),
        _f("n_documents", pa.int32(), "Documents that day."),
        _f("n_sources", pa.int32(), "Sources that day."),
        _f("new_sources", pa.int32(), "Sources stating the claim for the first time that day."),
        _f("cumulative_sources", pa.int32(), "Sources so far, that day included."),
    ],
    "How each claim cluster spread: documents and sources per day.",
)

RUNS = _schema(
    [
        _f("run_id", pa.string(), "Dagster run id."),
        _f("started_at", _TS, "When the run listed the raw dir."),
        _f("finished_at", _TS, "When its tables were published."),
        _f("code_version", pa.string(), "Pipeline version and git commit."),
        _f("package_versions", pa.map_(pa.string(), pa.string()), "Versions of key packages."),
        _f("model", pa.string(), "Embedding model."),
        _f("model_weights_sha256", pa.string(), "SHA-256 of its weights.", nullable=True),
        _f("config_sha256", pa.string(), "Hash of the run's configuration."),
        _f("config_json", pa.string(), "The configuration itself."),
        _f("input_files", pa.int64(), "Files under the raw dir."),
        _f("inputs_sha256", pa.string(), "Digest of every input path and content hash."),
        _f("row_counts", pa.map_(pa.string(), pa.int64()), "Rows per published table."),
        _f("published_tables", pa.list_(pa.string()), "Tables this run published."),
    ],
    "One row per successful run: what produced the published tables.",
)

SCHEMAS: Final[Mapping[str, pa.Schema]] = {
    "documents": DOCUMENTS,
    "rejected_files": REJECTED_FILES,
    "duplicates": DUPLICATES,
    "segments": SEGMENTS,
    "claims": CLAIMS,
    "themes": THEMES,
    "claim_themes": CLAIM_THEMES,
    "document_themes": DOCUMENT_THEMES,
    "theme_trends": THEME_TRENDS,
    "claim_matches": CLAIM_MATCHES,
    "claim_clusters": CLAIM_CLUSTERS,
    "claim_spread": CLAIM_SPREAD,
}

TABLE_DESCRIPTIONS: Final[Mapping[str, str]] = {
    name: (schema.metadata or {}).get(b"docthemes.description", b"").decode()
    for name, schema in SCHEMAS.items()
}


def to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table from row dicts with exactly the schema's columns and types."""
    columns = {name: [row[name] for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


def render_markdown() -> str:
    """The column reference of docs/tables.md, generated from the schemas above."""
    lines = [
        "<!-- Generated by `python -m pipeline.schemas > docs/tables_columns.md`; do not edit. -->",
        "",
    ]
    schemas = {**SCHEMAS, "claim_embeddings": embeddings_schema(384), "runs": RUNS}
    for name, schema in schemas.items():
        desc = (schema.metadata or {}).get(b"docthemes.description", b"").decode()
        lines += [f"### `{name}`", "", desc, ""]
        lines += ["| column | type | null | meaning |", "|---|---|---|---|"]
        for f in schema:
            doc = (f.metadata or {}).get(b"description", b"").decode()
            lines.append(f"| `{f.name}` | `{f.type}` | {'yes' if f.nullable else 'no'} | {doc} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_markdown())
