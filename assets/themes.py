"""Theme assets: themes, each claim's themes, each document's theme mix, and trends per day."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from assets.checks import THEME_CHECKS, check_specs, schema_results, theme_results
from assets.embeddings import CACHE_DIR
from assets.resources import EmbedderResource, PipelineSettings
from pipeline.embed import EmbeddingCache, align_embeddings, embed_with_cache
from pipeline.schemas import SCHEMAS, TABLE_DESCRIPTIONS, to_table
from pipeline.storage import TableFile
from pipeline.themes import (
    INPUTS_KEY,
    PreviousThemes,
    ThemeModel,
    ThemeVectors,
    assign_themes,
    theme_inputs_key,
)

THEME_TABLES = ("themes", "claim_themes", "document_themes", "theme_trends")


@dg.multi_asset(
    outs={
        name: dg.AssetOut(description=TABLE_DESCRIPTIONS[name], group_name="themes")
        for name in THEME_TABLES
    },
    check_specs=check_specs(THEME_TABLES, THEME_CHECKS),
)
def theme_tables(
    context: dg.AssetExecutionContext,
    documents: TableFile,
    claims: TableFile,
    claim_embeddings: pa.Table,
    settings: PipelineSettings,
    embedder: EmbedderResource,
) -> Iterator[dg.Output[pa.Table] | dg.AssetCheckResult]:
    """Assign claims to named themes, discover the rest, keep last night's theme ids.

    A night whose claims, document dates and settings are all unchanged republishes last
    night's theme tables as they are: same input, same answer (a refit would drift by a few
    boundary claims each night, one Lloyd step at a time).
    """
    catalog, config = settings.catalog(), settings.theme_config()
    # Dates only: the documents' texts are most of that table and no theme needs them.
    dated = documents.read(["doc_id", "published_date", "mtime"])
    # Likewise the claims' spans, flags and entities.
    claim_table = claims.read(["claim_id", "doc_id", "text", "paragraph"])
    claim_ids = claim_table.column("claim_id").to_pylist()
    doc_ids = claim_table.column("doc_id").to_pylist()
    dates = dated.to_pylist()
    doc_dates = {d["doc_id"]: d["published_date"] or d["mtime"].date() for d in dates}
    key = theme_inputs_key(claim_ids, doc_dates, catalog, config, embedder.cache_key)
    tables = None if settings.full_refresh else _unchanged_tables(settings, key)
    counts: dict[str, Any] = {"refitted": tables is None}
    if tables is None:
        cache = EmbeddingCache(settings.store.base_dir / CACHE_DIR, embedder.cache_key)
        vectors = ThemeVectors.from_catalog(
            catalog, lambda texts: embed_with_cache(texts, embedder.embed, cache).vectors
        )
        previous = None if settings.full_refresh else _previous_themes(settings)
        model = ThemeModel(vectors, config).fit(
            align_embeddings(claim_embeddings, claim_table.column("claim_id")),
            claim_table.column("text").to_pylist(),
            doc_ids,
            claim_table.column("paragraph").to_pylist(),
            claim_ids,
            previous,
        )
        rows = assign_themes(model, catalog, claim_ids, doc_ids, doc_dates)
        kinds = [t.kind for t in model.themes_]
        counts |= {k: kinds.count(k) for k in ("named", "discovered", "broad")}
        counts["retired"] = len(model.retired_)
        counts["kept_previous_ids"] = len(
            {t.theme_id for t in model.themes_} & set(previous.rows if previous else ())
        )
        tables = {name: to_table(rows[name], SCHEMAS[name]) for name in THEME_TABLES}
        themes = tables["themes"]
        tables["themes"] = themes.replace_schema_metadata(
            {**(themes.schema.metadata or {}), INPUTS_KEY: key.encode()}
        )
    for name, table in tables.items():
        yield dg.Output(table, output_name=name, metadata=counts if name == "themes" else None)
    yield from schema_results(tables)
    yield from theme_results(tables, claim_table, dated, catalog)


def _unchanged_tables(settings: PipelineSettings, key: str) -> dict[str, pa.Table] | None:
    """Last night's theme tables if they were made from exactly these inputs."""
    published = {name: settings.store.previous(name) for name in THEME_TABLES}
    themes = published["themes"]
    if themes is None or (themes.schema.metadata or {}).get(INPUTS_KEY) != key.encode():
        return None
    tables = {}
    for name, table in published.items():
        if table is None:
            return None
        tables[name] = table.cast(SCHEMAS[name]).replace_schema_metadata(table.schema.metadata)
    return tables


def _previous_themes(settings: PipelineSettings) -> PreviousThemes | None:
    themes, claim_themes = (
        settings.store.previous("themes"),
        settings.store.previous("claim_themes"),
    )
    if themes is None or claim_themes is None or "status" not in themes.column_names:
        return None
    primary = claim_themes.filter(pc.equal(claim_themes.column("rank"), 1))
    return PreviousThemes.from_rows(
        themes.to_pylist(),
        dict(
            zip(
                primary.column("claim_id").to_pylist(),
                primary.column("theme_id").to_pylist(),
                strict=True,
            )
        ),
    )
